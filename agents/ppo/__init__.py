"""Step-level PPO for reasoning environments, driven by process rewards."""
