"""Experiments and measurements that turn the lessons' claims into numbers: the matrix and
transfer depth (`experiments`), forgetting over strategies and seeds (`forgetting_experiment`), the
benchmarks (`bench`, `text_bench`, `text_scale`), the offline pretraining of the studio's own models
(`pretrain_vision`, `pretrain_text`) and the committed results as page 4 reads them (`committed_results`).
Each is a command (`python -m tlcore ...`) with committed results; none answers a page at request
time (tlcore.explain, tlcore.serve).
"""
