"""Runs inside vLLM's worker process (`worker_extension_cls`): reload weights from a directory.

Imported by vLLM in its own process; it must not import the rest of the package's heavy parts.
"""

from __future__ import annotations


class WeightSync:
    """Mixed into vLLM's worker: `self` is the worker (`reload_weights`, `model_runner`)."""

    def reload_from(self, directory: str) -> None:
        """Load every safetensors file of `directory` in place, then re-tie a tied lm_head."""
        self.reload_weights(weights_path=directory, is_checkpoint_format=True)
        model = self.model_runner.get_model()
        config = self.model_runner.model_config.hf_config.get_text_config()
        if getattr(config, "tie_word_embeddings", False):
            # The reload refills embed_tokens but leaves lm_head with the old (repacked) weights.
            model.lm_head.weight = model.model.embed_tokens.weight
            model.lm_head.quant_method.process_weights_after_loading(model.lm_head)
