"""How it is batched: input transforms, splits, the patch loader and the training stream."""
