"""Write ``reference.json``: OPERA's own models' outputs on fixed weights and inputs.

Not run by the tests (it needs OPERA's code): ``tests/test_opera.py`` loads the same
weights into our models and compares. To regenerate, with OPERA's repository
(github evelyn0414/OPERA) at ``$OPERA`` and ``efficientnet_pytorch==0.7.1``,
``torchlibrosa==0.1.0`` and ``timm==1.0.3`` importable (OPERA's ``models_mae``
imports its ``mae_utils/swin_transformer.py`` as timm's Swin block, as its set-up
does; Lightning can be a stand-in ``LightningModule = nn.Module``)::

    PYTHONPATH=$OPERA python tests/data/opera_reference/make_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from weights import BATCH, fill_published, inputs  # noqa: E402


def main() -> None:
    from src.model.models_cola import Cola
    from src.model.models_mae import mae_vit_small

    torch.Tensor.cuda = lambda self, *a, **k: self  # OPERA's loss line calls .cuda()
    torch.cuda.synchronize = lambda *a, **k: None
    models = {
        "opera_ce": Cola(encoder="efficientnet"),
        "opera_ct": Cola(encoder="htsat"),
        "opera_gt": mae_vit_small(
            norm_pix_loss=False,
            in_chans=1,
            audio_exp=True,
            img_size=(256, 64),
            alpha=0.0,
            mode=0,
            use_custom_patch=False,
            split_pos=False,
            pos_trainable=False,
            use_nce=False,
            decoder_mode=1,
            mask_2d=False,
            mask_t_prob=0.7,
            mask_f_prob=0.3,
            no_shift=False,
        ).float(),
    }
    out: dict = {"batch": BATCH}
    x, v1, v2 = inputs()
    for name, ref in models.items():
        fill_published(ref.state_dict())
        ref.eval()
        with torch.no_grad():
            if name == "opera_gt":
                emb = ref.forward_feature(x)
                torch.manual_seed(5)
                loss = ref(x)[0]
            else:
                emb = ref.extract_feature(x, {"opera_ce": 1280, "opera_ct": 768}[name])
                z1, z2 = ref((v1, v2))
                loss = torch.nn.functional.cross_entropy(
                    z1 @ z2.t(), torch.arange(len(z1))
                )
        out[name] = {
            "keys": sorted(ref.state_dict()),
            "embedding": emb.tolist(),
            "ssl_loss": float(loss),
        }
    (Path(__file__).parent / "reference.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
