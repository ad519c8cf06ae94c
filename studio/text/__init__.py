"""The Text page's helpers (pages/5_text.py), in one place as the text family is in tlcore.text:
its widget groups (`widgets`: backbone, data and training pickers, the tokenizer and fill-mask
demos) and its real-text parts (`pretraining`: the dataset and studio-BERT cards, the live
pretraining, the scale table).
"""
