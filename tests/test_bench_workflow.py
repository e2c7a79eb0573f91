"""benchmarks/bench_workflow.py: how it splits a job's time by phase from the job's log (no timing)."""

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench_workflow():
    return load_benchmark("bench_workflow")


# A teacher's training log as the jobs write it: TensorFlow's own lines, our timestamped log
# lines, Keras' per-epoch lines at verbose=2, and a second "devices:" line when the job
# starts TensorFlow again for the teacher's logits.
TEACHER_LOG = """\
I0000 00:00:1796668461.432574    8182 port.cc:153] oneDNN custom operations are on.
2026-12-07 18:34:27,571 INFO avdistill.train.session: devices: CPU only; CPU kernels: oneDNN
19/19 - 17s - 888ms/step - accuracy: 0.1258 - loss: 2.3131
Epoch 2/2
19/19 - 15s - 776ms/step - accuracy: 0.1327 - loss: 1.9978
Epoch 3/3
19/19 - 16s - 834ms/step - accuracy: 0.2456 - loss: 1.8926
2026-12-07 18:35:20,000 INFO avdistill.train.fit: keeping the last epoch (3), as checkpoint: last asks
2026-12-07 18:35:31,250 INFO avdistill.train.session: devices: CPU only; CPU kernels: oneDNN
2026-12-07 18:36:52,750 INFO avdistill.train.teacher_logits: dualcamnet: logits of 3390 records, 12 frames each
"""


def test_a_teacher_job_is_split_into_epochs_tracing_teacher_logits_and_the_rest(bench_workflow):
    phases = bench_workflow.log_phases(TEACHER_LOG, total_s=160.0)
    epochs = 17 + 15 + 16
    # 18:35:31.250 to 18:36:52.750
    teacher = 60 + 21.5
    assert phases["epochs"] == pytest.approx(epochs)
    # The first epoch less the median of the others (15 and 16).
    assert phases["first_epoch_excess"] == pytest.approx(17 - 15.5)
    assert phases["teacher_logits"] == pytest.approx(teacher)
    assert phases["other"] == pytest.approx(160.0 - epochs - teacher)


def test_a_one_epoch_student_has_no_teacher_logits_and_no_excess(bench_workflow):
    log = (
        "2026-12-07 18:38:23,478 INFO avdistill.train.session: devices: CPU only; CPU kernels: oneDNN\n"
        "19/19 - 20s - 1s/step - accuracy: 0.2583 - loss: 2.2541\n"
        "2026-12-07 18:38:45,558 INFO avdistill.train.fit: keeping the last epoch (1), as checkpoint: last asks\n"
    )
    phases = bench_workflow.log_phases(log, total_s=39.0)
    assert phases == {"epochs": 20.0, "first_epoch_excess": 0.0, "teacher_logits": 0.0, "other": 19.0}


def test_phases_sum_the_jobs_of_each_network(bench_workflow, tmp_path):
    # Two seeds of a teacher and one distillation, laid out as the workflow writes them.
    runs = {
        "stage1/dualcamnet/all/seed~0/train": (TEACHER_LOG, 160.0),
        "stage1/dualcamnet/all/seed~1/train": (TEACHER_LOG, 170.0),
        "stage2/hearnet/from_dualcamnet/all/lambda~0.5/T~1.0/seed~0/distill": (
            "19/19 - 7s - 1s/step\n19/19 - 6s - 1s/step\n",
            20.0,
        ),
    }
    for run, (log, seconds) in runs.items():
        (tmp_path / "results/logs" / run).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "results/logs" / f"{run}.log").write_text(log)
        (tmp_path / "results/benchmarks" / run).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "results/benchmarks" / f"{run}.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
    phases = bench_workflow.job_phases(tmp_path)
    assert set(phases) == {"stage1/dualcamnet", "stage2/hearnet"}
    assert phases["stage1/dualcamnet"]["jobs"] == 2
    assert phases["stage1/dualcamnet"]["s"] == pytest.approx(330.0)
    assert phases["stage1/dualcamnet"]["teacher_logits"] == pytest.approx(2 * 81.5)
    assert phases["stage1/dualcamnet"]["other"] == pytest.approx(330.0 - 2 * 48 - 2 * 81.5)
    assert phases["stage2/hearnet"] == {
        "jobs": 1,
        "s": 20.0,
        "epochs": 13.0,
        "first_epoch_excess": 1.0,
        "teacher_logits": 0.0,
        "other": 7.0,
    }
