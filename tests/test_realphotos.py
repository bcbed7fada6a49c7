"""The default face pipeline on photographs of the real-photo benchmark (benchmarks/realphotos/), against the
hand-checked boxes and labels: the faces a person counts are found, nothing else is boxed."""

import csv
import json

import cv2
import pytest
from conftest import PROJECT_ROOT, load_script

from resdropnet.evaluation.photos import match_detections
from resdropnet.inference import EmotionRecognizer
from resdropnet.labels import EMOTIONS

BENCHMARK = PROJECT_ROOT / "benchmarks" / "realphotos"
TRUTH = json.loads((BENCHMARK / "truth.json").read_text())["photos"]
# A group photo, small faces of a group photo taken from further off, profiles in a crowd, a grimace among smiles,
# posed expressions and a photo of dogs.
PHOTOS = ["faceapi_bbt3.jpg", "ulfd_6_small.jpg", "ulfd_24.jpg", "dlib_2008_002506.jpg", "faceapi_surprised.jpg",
          "faceapi_happy.jpg", "dlib_dogs.jpg"]


@pytest.fixture(scope="module")
def default_pipeline():
    return EmotionRecognizer()


def counted(name):
    return [face for face in TRUTH[name] if not face.get("ignore")]


@pytest.mark.parametrize("name", PHOTOS)
def test_the_default_pipeline_finds_every_counted_face_and_boxes_nothing_else(default_pipeline, name):
    faces = default_pipeline.predict(BENCHMARK / "images" / name)
    boxes = [face.box.to_list() for face in faces]
    hits = match_detections([face["box"] for face in counted(name)], boxes)
    explained = match_detections([face["box"] for face in TRUTH[name]], boxes)
    assert len(hits) == len(counted(name)), f"{name}: {len(hits)} of {len(counted(name))} faces found"
    assert len(explained) == len(boxes), f"{name}: {len(boxes) - len(explained)} false box(es)"
    labelled = {i: face["emotion"] for i, face in enumerate(counted(name)) if "emotion" in face}
    for i, j in hits:
        if i in labelled and labelled[i] in ("happy", "surprise"):
            assert faces[j].emotion == labelled[i], f"{name}: a {labelled[i]} face read as {faces[j].emotion}"


def test_the_haar_cascade_misses_the_small_faces_the_default_finds():
    name = "ulfd_6_small.jpg"  # 14 faces of 21-33 px
    boxes = [face.box.to_list() for face in EmotionRecognizer(detector="haar").predict(BENCHMARK / "images" / name)]
    assert len(match_detections([face["box"] for face in counted(name)], boxes)) < len(counted(name)) // 2


def test_the_benchmark_scores_a_photo_as_its_readme_says():
    realphotos = load_script("benchmarks/realphotos.py")
    truth = [{"box": [0, 0, 100, 100]}, {"box": [200, 0, 100, 100], "emotion": "happy"},
             {"box": [400, 0, 10, 10], "ignore": True}]

    class Found:
        def __init__(self, box, emotion):
            from resdropnet.faces import Box

            self.box, self.emotion = Box(*box), emotion

    found = [Found([210, 5, 100, 100], "neutral"), Found([401, 0, 10, 10], "sad"), Found([600, 0, 50, 50], "sad")]
    assert realphotos.score_photo(truth, found) == {"faces": 2, "hits": 1, "false": 1,
                                                    "labelled": [("happy", "neutral")]}


def test_every_photo_has_its_source_its_size_and_boxes_inside_it():
    with open(BENCHMARK / "manifest.csv", newline="") as handle:
        manifest = {row["file"]: row for row in csv.DictReader(handle)}
    assert sorted(manifest) == sorted(TRUTH) == sorted(path.name for path in (BENCHMARK / "images").iterdir())
    for name, faces in TRUTH.items():
        height, width = cv2.imread(str(BENCHMARK / "images" / name)).shape[:2]
        assert (int(manifest[name]["width"]), int(manifest[name]["height"])) == (width, height), name
        assert manifest[name]["repository"].startswith("https://github.com/") and manifest[name]["licence"], name
        for face in faces:
            x, y, w, h = face["box"]
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height, f"{name}: {face['box']}"
            assert face.get("emotion", "neutral") in EMOTIONS and not ("emotion" in face and face.get("ignore"))
