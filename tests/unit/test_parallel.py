"""tests/parallel.py: how a suite's files are dealt out to pytest processes."""
from tests.parallel import UNKNOWN_FILE_SECONDS, deal, file_seconds


def test_files_are_dealt_longest_first_to_the_least_loaded_process_and_never_split():
    seconds = {"a.py": 100, "b.py": 60, "c.py": 50, "d.py": 10}
    groups = deal(["d.py", "c.py", "b.py", "a.py"], seconds, 2)
    assert groups == [["a.py", "d.py"], ["b.py", "c.py"]]  # 110 s each
    assert sorted(name for group in groups for name in group) == ["a.py", "b.py", "c.py", "d.py"]


def test_a_file_not_measured_yet_counts_as_a_small_module_and_no_process_is_left_empty():
    groups = deal(["new.py", "old.py"], {"old.py": UNKNOWN_FILE_SECONDS * 3}, 4)
    assert groups == [["old.py"], ["new.py"]]


def test_seconds_are_summed_per_file_from_a_junit_report(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.e2e.test_wall" name="test_a" time="2.5"/>'
        '<testcase classname="tests.e2e.test_wall.TestScreen" name="test_b" time="1.5"/>'
        '<testcase classname="tests.unit.test_feed" name="test_c" time="0.25"/>'
        '</testsuite></testsuites>')
    assert file_seconds(report) == {"tests/e2e/test_wall.py": 4.0, "tests/unit/test_feed.py": 0.25}
    assert file_seconds(tmp_path / "missing.xml") == {}
