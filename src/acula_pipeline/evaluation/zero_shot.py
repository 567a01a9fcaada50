"""Zero-shot classification and audio→report retrieval through the aligned heads.

Audio embeddings go through the aligned model's audio head and teacher embeddings
(of class descriptions, or of reports) through its text head; both are compared by
cosine similarity in the shared space. Zero-shot scores are those similarities per
class (AUROC does not need them calibrated); retrieval ranks each clip's own report
among all test reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from acula_pipeline.evaluation.metrics import retrieval_metrics
from acula_pipeline.models import HeadCfg, ProjectionHead


class SharedSpace:
    """The aligned artefact's two projection heads, frozen.

    CKA losses compare centred features, so a head may add any constant offset to
    its outputs; for those, projections are centred over the set being compared
    (the clips; the descriptions or reports) before the cosine. Note that
    ``cka_feature`` (the authors' term) compares feature covariances and never pairs
    a clip with its own report: zero-shot and retrieval are only expected above
    chance for the paired losses (``cka_linear``, ``clip``, ``siglip``).
    """

    def __init__(self, artifact: dict[str, Any]) -> None:
        config = artifact["config"]
        self.loss = str(config["params"].get("loss", "cka_feature"))
        self.centre = self.loss.startswith("cka")
        head = HeadCfg(**config["params"]["head"])
        state = artifact["state_dict"]
        audio_in = state["audio_head.0.weight"].shape[1]
        self.audio = ProjectionHead(audio_in, head).eval()
        self.text = ProjectionHead(int(config["teacher"]["dim"]), head).eval()
        for name, module in (("audio_head.", self.audio), ("text_head.", self.text)):
            module.load_state_dict(
                {k[len(name) :]: v for k, v in state.items() if k.startswith(name)}
            )

    @torch.no_grad()
    def project(self, x: np.ndarray, side: str) -> np.ndarray:
        """L2-normalised projections of encoder (``audio``) or teacher (``text``)
        embeddings."""
        head = self.audio if side == "audio" else self.text
        out = head(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        if self.centre and len(out) > 1:
            out = out - out.mean(dim=0, keepdim=True)
        return F.normalize(out, dim=-1).numpy()


def zero_shot_scores(
    space: SharedSpace, audio: np.ndarray, class_text: np.ndarray
) -> np.ndarray:
    """(n, classes) cosine similarities of each clip to each class description."""
    return space.project(audio, "audio") @ space.project(class_text, "text").T


def report_retrieval(
    space: SharedSpace,
    audio: np.ndarray,
    reports: np.ndarray,
    match: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k and median rank of each clip's own report (``match[i]``) among
    ``reports`` (teacher embeddings)."""
    sim = space.project(audio, "audio") @ space.project(reports, "text").T
    return retrieval_metrics(sim, match, ks)
