"""`python -m tlcore fill-mask`: the masked-word demo.

The other text commands register themselves beside their work: text-bench
(tlcore.text.bench), pretrain-text (tlcore.text.pretrain) and text-scale
(tlcore.text.scale).

Fine-tuning text models needs no command of its own: `python -m tlcore finetune --task text
--backbone bert_tiny --dataset sentiment_en ...` goes through tlcore.train.recipe.run, and
`python -m tlcore prefetch --backbones bert_base` fills the Hugging Face cache.
"""

from __future__ import annotations

import sys

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


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "fill-mask",
        help="guess the hidden word in a sentence with [MASK] (BERT's pretraining task)",
        description="Show a masked language model's top guesses for each [MASK], e.g. "
        'python -m tlcore fill-mask "The cat is on the [MASK]."',
    )
    p.add_argument("sentence", help="a sentence with one or more [MASK]")
    p.add_argument(
        "--model",
        default="",
        help="text backbone with a masked-word head, or a saved folder (default: the first of bert_base, distilbert_base, "
        "bert_tiny, bert_multilingual, klue_bert already on this machine, else the studio's own studio_bert, offline)",
    )
    p.add_argument("--top-k", type=int, default=5, help="guesses per mask (default: %(default)s)")
    p.set_defaults(func=cmd_fill_mask)
