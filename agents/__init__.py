"""Agents built on reasoning_gym: search agents and RL trainers."""
