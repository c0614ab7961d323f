"""RaFD file-name parsing and folder reading, on fixture folders made here."""

from pathlib import Path

import pytest
from PIL import Image

from facegen.data.rafd import RafdSource, parse_rafd_name
from facegen.faceset import DataError

PARSED = [
    # file name, camera angle, model id, ethnicity, gender, emotion, gaze, yaw, kid
    ("Rafd090_01_Caucasian_female_angry_frontal.jpg", 90, "01", "Caucasian", "female", "angry", "frontal", 0.0, False),
    ("Rafd000_33_Moroccan_male_contemptuous_left.jpg", 0, "33", "Moroccan", "male", "contemptuous", "left", -90.0, False),
    ("Rafd180_71_Caucasian_male_surprised_right.jpg", 180, "71", "Caucasian", "male", "surprised", "right", 90.0, False),
    ("Rafd045_04_Kid_female_happy_frontal.jpg", 45, "04", "Kid", "female", "happy", "frontal", -45.0, True),
    ("Rafd135_49_Kid_male_fearful_left.JPG", 135, "49", "Kid", "male", "fearful", "left", 45.0, True),
    ("Rafd090_10_Caucasian_female_disgusted_frontal.png", 90, "10", "Caucasian", "female", "disgusted", "frontal", 0.0, False),
]


@pytest.mark.parametrize("name, angle, model, ethnicity, gender, emotion, gaze, yaw, kid", PARSED)
def test_parse_valid_names(name, angle, model, ethnicity, gender, emotion, gaze, yaw, kid):
    parsed = parse_rafd_name(name)
    assert parsed.camera_angle == angle
    assert parsed.model_id == model
    assert parsed.ethnicity == ethnicity
    assert parsed.gender == gender
    assert parsed.emotion == emotion
    assert parsed.gaze == gaze
    assert parsed.yaw == yaw
    assert parsed.is_kid is kid


MALFORMED = [
    ("Rafd090_01_Caucasian_female_angry.jpg", "is not a RaFD file name"),  # gaze missing
    ("Rafd90_01_Caucasian_female_angry_frontal.jpg", "is not a RaFD file name"),  # two-digit angle
    ("Rafd060_01_Caucasian_female_angry_frontal.jpg", "camera angle 060"),
    ("Rafd090_01_Caucasian_other_angry_frontal.jpg", "gender 'other'"),
    ("Rafd090_01_Caucasian_female_angry_up.jpg", "gaze 'up'"),
    ("photo_001.jpg", "is not a RaFD file name"),
    ("Rafd090_01_Caucasian_female_angry_frontal.gif", "is not a RaFD file name"),
]


@pytest.mark.parametrize("name, message", MALFORMED)
def test_parse_malformed_names(name, message):
    with pytest.raises(DataError, match=message):
        parse_rafd_name(name)


def make_rafd_folder(root: Path, names: list[str], size=(68, 102)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", size, (20 * i % 255, 100, 150)).save(root / name)
    return root


ADULTS = [
    f"Rafd{angle:03d}_{model:02d}_Caucasian_female_{emotion}_{gaze}.jpg"
    for angle in (45, 90)
    for model in (2, 10)
    for emotion in ("angry", "happy")
    for gaze in ("frontal", "left")
]
KIDS = ["Rafd090_04_Kid_male_happy_frontal.jpg"]


def test_reader_default_filters(tmp_path):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS + KIDS)
    faces = RafdSource(root).load(width=16, height=20, channels=3)
    # Frontal gaze, adults only, all camera angles: 2 angles x 2 models x 2 emotions.
    assert len(faces) == 8
    assert faces.identity_names == ["02", "10"]
    assert faces.emotion_names == ["angry", "happy"]
    assert faces.images.shape == (8, 3, 20, 16)
    assert sorted(set(faces.yaws.tolist())) == [-45.0, 0.0]
    assert faces.emotions.sum(dim=1).eq(1).all()


def test_reader_filters_are_settings(tmp_path):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS + KIDS)
    faces = RafdSource(root, camera_angles=[90], gazes=["frontal", "left"], include_kids=True).load(16, 20, 1)
    assert len(faces) == 2 * 2 * 2 + 1
    assert faces.identity_names == ["02", "04", "10"]
    assert faces.images.shape[1] == 1


def test_reader_missing_folder(tmp_path):
    with pytest.raises(DataError, match="data folder not found: .*nowhere"):
        RafdSource(tmp_path / "nowhere").load(16, 20, 3)


def test_reader_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images .* found in .*empty"):
        RafdSource(tmp_path / "empty").load(16, 20, 3)


def test_reader_unparsable_name(tmp_path):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS[:2] + ["holiday.jpg"])
    with pytest.raises(DataError, match="'holiday.jpg' is not a RaFD file name"):
        RafdSource(root).load(16, 20, 3)


def test_reader_unknown_emotion(tmp_path):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS[:2] + ["Rafd090_05_Caucasian_male_bored_frontal.jpg"])
    with pytest.raises(DataError, match="unknown emotion 'bored'; allowed emotions are angry, contemptuous"):
        RafdSource(root).load(16, 20, 3)


def test_reader_unreadable_image(tmp_path):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS[:2])
    broken = root / "Rafd090_07_Caucasian_male_sad_frontal.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="Rafd090_07_Caucasian_male_sad_frontal.jpg: cannot read the image"):
        RafdSource(root).load(16, 20, 3)


def test_reader_skip_lists_what_it_skipped(tmp_path, caplog):
    root = make_rafd_folder(tmp_path / "rafd", ADULTS)
    (root / "holiday.jpg").write_bytes(b"x")
    (root / "Rafd090_07_Caucasian_male_sad_frontal.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level("WARNING"):
        faces = RafdSource(root, on_bad_file="skip").load(16, 20, 3)
    assert len(faces) == 8
    assert "skipped 1 file(s) whose names do not parse" in caplog.text
    assert "holiday.jpg" in caplog.text
    assert "skipped 1 unreadable image(s)" in caplog.text
    assert "Rafd090_07_Caucasian_male_sad_frontal.jpg" in caplog.text


def test_reader_rejects_bad_filters(tmp_path):
    with pytest.raises(DataError, match=r"camera_angles has \[60\]"):
        RafdSource(tmp_path, camera_angles=[60])
    with pytest.raises(DataError, match=r"gazes has \['up'\]"):
        RafdSource(tmp_path, gazes=["up"])
    with pytest.raises(DataError, match="not a box inside the photo"):
        RafdSource(tmp_path, crop={"left": 0.6, "right": 0.4})
