"""`python -m tlcore fill-mask`: the masked-word demo.

The other text commands are declared beside their work: text-bench (tlcore.text.bench),
pretrain-text (tlcore.text.pretrain) and text-scale (tlcore.text.scale); tlcore.cli lists them.

Fine-tuning text models needs no command of its own: `python -m tlcore finetune --task text
--backbone bert_tiny --dataset sentiment_en ...` goes through tlcore.train.recipe.run, and
`python -m tlcore prefetch --backbones bert_base` fills the Hugging Face cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.text.bert import TextModelUnavailable, default_masked_lm, load_masked_lm
from tlcore.text.fill_mask import fill_mask


def cmd_fill_mask(args) -> int:
    try:
        model, tokenizer = load_masked_lm(args.model or default_masked_lm())
    except TextModelUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for i, guesses in enumerate(fill_mask(model, tokenizer, args.sentence, args.top_k), start=1):
        print(f"[MASK] #{i}:")
        for g in guesses:
            print(f"  {g.score:6.1%}  {g.token:<16} {g.sentence}")
    return 0


@dataclass(frozen=True)
class FillMaskOptions:
    sentence: str = setting("", "a sentence with one or more [MASK]", positional=True)
    model: str = setting(
        "",
        "text backbone with a masked-word head, or a saved folder (empty: the first of bert_base, distilbert_base, "
        "bert_tiny, bert_multilingual, klue_bert already on this machine, else the studio's own studio_bert, offline)",
    )
    top_k: int = setting(5, "guesses per mask", lo=1, hi=100)


FILL_MASK = Command(
    "fill-mask",
    "guess the hidden word in a sentence with [MASK] (BERT's pretraining task)",
    cmd_fill_mask,
    flags=(Flags(FillMaskOptions),),
    description="Show a masked language model's top guesses for each [MASK], e.g. "
    'python -m tlcore fill-mask "The cat is on the [MASK]."',
)
