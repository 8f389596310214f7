"""The GRPO learner: advantages, policy-loss variants, the Learner and the Trainer loop."""
