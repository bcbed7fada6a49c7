"""The one label order used everywhere: the order of fer2013.csv's `emotion` column."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS = ("train", "val", "test")

# FER2013's `Usage` values and file-name prefixes, mapped onto our split ids.
USAGE_TO_SPLIT = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}
SPLIT_DESCRIPTIONS = {
    "train": "Training",
    "val": "PublicTest (validation: every choice is made on it)",
    "test": "PrivateTest (report only)",
}
IMAGE_SIZE = 48
