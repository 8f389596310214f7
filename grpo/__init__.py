"""GRPO: the policy-loss maths and its registries, the policy-gradient objective the learner
core trains with, and the Trainer loop (rollout -> rewards -> advantages -> step -> sync)."""
