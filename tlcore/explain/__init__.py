"""What a model makes of the data, computed when a page asks: the feature space (`feature_space`:
frozen features of the pretrained, random and fine-tuned bodies squeezed to 2-D, with probe
accuracies, on one background thread) and what a model looks at in one picture (`gradcam`).

Not for: training (tlcore.train), the queue (tlcore.serve) or drawing any of it (studio).
"""
