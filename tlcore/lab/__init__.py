"""Experiments and measurements that turn the lessons' claims into numbers: the matrix and
transfer depth (`experiments`), forgetting over strategies and seeds (`forgetting_experiment`), the
benchmark (`bench`), the offline pretraining of the studio's vision model (`pretrain_vision`) and the
committed results as page 4 reads them (`committed_results`); the text family's benchmarks and
pretraining are tlcore.text's.
Each is a command (`python -m tlcore ...`) with committed results; none answers a page at request
time (tlcore.explain, tlcore.serve).
"""
