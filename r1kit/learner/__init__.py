"""The learner core every objective trains through: the policy model, its optimizer and
schedule, micro-batching (prefix packing where it applies), log-probs, checkpoints, and rank
placement (DDP/FSDP2 on Ray). GRPO's policy loss and distillation's losses are objectives it
calls; it imports neither `grpo/` nor `distill/`."""
