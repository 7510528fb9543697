"""What LoRA did to the base's language model on some text: per-token KL and perplexities, summarised (torch-free).

Input: per predicted token, KL(base || base+LoRA) of the two next-token distributions and the negative
log-likelihood of the true next token under each (models/lm_head.py). Output: `report["beyond_task"]["lm"]`.
Biderman et al. 2024 ("LoRA learns less and forgets less") and Shenfeld et al. 2025 ("RL's razor") read
forgetting off exactly these: the forward KL to the base on text outside the task, and the base's perplexity.
"""

from __future__ import annotations

import numpy as np

QUANTILES = {"p50": 50, "p90": 90, "p99": 99}


def lm_summary(kl, nll_base, nll_lora) -> dict | None:
    """Mean per-token KL (nats) with its quantiles, and both perplexities (exp of the mean NLL over the same tokens).

    None when no token has a next token (every text one token long).
    """
    kl, nll_base, nll_lora = (np.asarray(x, dtype=np.float64) for x in (kl, nll_base, nll_lora))
    if kl.size == 0:
        return None
    quantiles = {name: float(np.percentile(kl, q)) for name, q in QUANTILES.items()}
    return {
        "kl_mean": float(kl.mean()),
        "kl_per_token_quantiles": {**quantiles, "max": float(kl.max())},
        "perplexity_base": float(np.exp(nll_base.mean())),
        "perplexity_lora": float(np.exp(nll_lora.mean())),
        "nll_base": float(nll_base.mean()),
        "nll_lora": float(nll_lora.mean()),
        "tokens": int(kl.size),
    }
