"""What is imaged: the template anatomy, tissues and their values, the procedural phantom, B1."""
