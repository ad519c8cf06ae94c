"""The networks: every backbone and dataset registered in one place (`catalog`), how each vision and
text backbone is built and split into layer groups (`backbones`, `text_backbones`, `text_specs`,
`groups`, `depthwise`: a faster weight gradient for depthwise convolutions on the CPU), and what a
pretrained network already knows (`imagenet`, `fill_mask`). No training loop here.
"""
