"""How it is sampled: schedules' k-space trajectories, NUFFT, gridding, coils, the fast compartment path."""
