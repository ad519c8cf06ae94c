"""The networks: every backbone and dataset registered in one place (`catalog`), how each vision and
text backbone is built and split into layer groups (`backbones`, `text`, `text_specs`, `groups`),
and what a pretrained network already knows (`imagenet`, `fill_mask`). No training loop here.
"""
