"""What a learner takes home from a finished run: the model as files (`model_files`: safetensors
with its settings, ONNX, a model card (`card`), a zip of them; `load` and `predict` without the
studio) and a Jupyter notebook that trains the same run again in plain PyTorch (`notebook` for
image runs and the entry for both, `notebook_text` for text runs, `notebook_cells` for what both
share).

Not for: keeping models on the server (tlcore.serve) or training in the studio (tlcore.train).
"""

from tlcore.takehome.model_files import load  # noqa: F401 -- `from tlcore import takehome; takehome.load(...)`, as a model zip's README says
