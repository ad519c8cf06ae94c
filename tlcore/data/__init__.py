"""Data in: every image dataset the studio trains on, read, checked and split once (`datasets`,
`procedural`), the two doors for a stranger's files (`images`: one image file; `image_zip`: a zip
of class folders, what it refuses and what it skips), what the training loop reads of its batches
(`sources`: the contract and the cached-prefix rule) and the frozen features kept between runs
(`feature_cache`). Nothing here runs a model: the batch sources that do are
tlcore.train.image_batches (and the text family's). Models, training and the server are not here;
sentences are the text family's (tlcore.text); where a session's uploads live on the server is
tlcore.serve.
"""
