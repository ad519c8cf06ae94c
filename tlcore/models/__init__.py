"""The networks: every backbone and dataset registered in one place (`catalog`, with the families
that register themselves, tlcore.text), how each vision backbone is built and split into layer
groups (`backbones`, `groups`, `depthwise`: a faster weight gradient for depthwise convolutions on
the CPU), and what a pretrained network already knows (`imagenet`). No training loop here; the
text models are the text family's (tlcore.text).
"""
