"""Experiments and measurements that turn the lessons' claims into numbers (`experiments`,
`forgetting_experiment`, the benchmarks, the offline pretraining of the studio's own models, the
committed results as page 4 reads them: `report`). Two of its modules also answer pages at request
time: the feature space (`embedding`) and Grad-CAM (`explain`); issue 33 asks for them to move
beside the server's other request-time work.
"""
