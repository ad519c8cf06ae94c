"""Data in: every dataset the studio trains on, read, checked and split once (`datasets`, `text`,
`corpora`, `procedural`, `images`: the one door for a stranger's image file), and the batch sources
the training loop reads (`sources`, `text_source`) with the frozen features kept between runs
(`feature_cache`). Models, training and the server are not here.
"""
