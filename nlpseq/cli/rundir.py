"""The run directory a command writes in, checked before Hydra writes anything there.

Hydra creates the run directory, writes ``.hydra/`` and opens ``<command>.log`` in it before
the command's own code runs, so these checks run in each entry point's ``main``, on the
config composed there (``nlpseq.cli.common.check_overrides``):

- the directory is pinned: a pattern with ``${now:...}`` is resolved once and handed to
  Hydra as it is, so Hydra writes in the directory that was checked (not a second later);
- it can be created and written (else one line, not a logging-handler traceback);
- it holds no finished run (checkpoints or metrics.json) that the command would write over,
  unless ``nlpseq-train resume=true`` continues that run;
- no other nlpseq command is writing in it (``RunLock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
LOCK_FILE = ".nlpseq.lock"
FINISHED = ("checkpoints/*.ckpt", "metrics.json")  # what a finished run leaves behind


def secondary_rank() -> bool:
    """True in a DDP process other than rank 0: Lightning (or a scheduler) started it with
    the job's own run directory, which rank 0 has checked and locked."""
    return any(os.environ.get(name, "0") not in ("", "0")
               for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


def planned_dir(cfg: DictConfig, multirun: bool) -> tuple[str, Path] | None:
    """``(key, directory)``: where Hydra will write (``hydra.sweep.dir`` for a sweep), or None
    when the pattern needs what only Hydra's own run can fill in (then the command checks
    what it can from inside the run)."""
    from hydra.core.hydra_config import HydraConfig

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        HydraConfig.instance().set_config(cfg)  # for ${hydra:...} in the pattern
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except Exception:  # noqa: BLE001 - any unresolvable pattern: leave it to Hydra
        return None
    return (key, Path(str(value))) if value else None


def pinned_argv(argv: list[str], cfg: DictConfig, key: str, directory: Path) -> list[str]:
    """``argv`` with ``key`` set to ``directory`` when its pattern holds an interpolation
    (``outputs/train/${now:%H-%M-%S}``), so Hydra resolves nothing later; else ``argv``."""
    raw = OmegaConf.to_container(OmegaConf.select(cfg, key.rpartition(".")[0]),
                                 resolve=False).get(key.rpartition(".")[2])
    text = str(directory)
    if "${" not in str(raw) or "\\" in text or "${" in text:  # nothing to pin, or a path
        return argv                                         # Hydra's quoting would change
    kept = [arg for arg in argv if arg.split("=", 1)[0].lstrip("+~") != key]
    quoted = text.replace("'", "\\'")  # in a quoted Hydra value only the quote is escaped
    return [*kept, f"{key}='{quoted}'"]


RECORD_FOLDERS = (".hydra", "checkpoints", "csv", "tensorboard", "source_tokenizer",
                  "target_tokenizer")  # the folders of a run's record


def run_around(path: Path) -> tuple[Path, Path] | None:
    """``(run, inside)``: the nearest run directory (it has ``.hydra/``) up to three levels
    above ``path``, and ``path`` relative to it; None when there is none."""
    resolved = path.expanduser().resolve()
    for run in resolved.parents[:3]:
        if (run / ".hydra").is_dir():
            return run, resolved.relative_to(run)
    return None


def in_record_folder(path: Path) -> tuple[Path, str] | None:
    """``(run, folder)`` when ``path`` lies in one of a run's record folders
    (``checkpoints/``, ``.hydra/``, ...): no output may go there."""
    found = run_around(path)
    if found and found[1].parts[0] in RECORD_FOLDERS:
        return found[0], found[1].parts[0]
    return None


def finished_files(directory: Path) -> list[str]:
    """The files of a finished run in ``directory`` or in the directories just below it
    (the jobs of a sweep; the runs a multirun ``nlpseq-eval`` writes), relative to it."""
    return sorted(str(path.relative_to(directory)) for prefix in ("", "*/")
                  for pattern in FINISHED for path in directory.glob(prefix + pattern))


def refuse_finished_run(directory: Path, key: str, resume_hint: bool) -> None:
    """A command never writes its record over a finished run's: checkpoints and metrics.json
    stay as the run left them, and so does the ``.hydra/`` config that describes them."""
    found = finished_files(directory)
    if not found:
        return
    more = f" and {len(found) - 4} more" if len(found) > 4 else ""
    hint = " (or continue it with resume=true)" if resume_hint else ""
    raise NlpseqError(f"{directory} already holds the record of a run ({', '.join(found[:4])}"
                      f"{more}); pick another {key} or remove them first{hint}")


def make_writable_dir(directory: Path, key: str) -> None:
    """Create ``directory``; refuse in one line when it cannot be created or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NlpseqError(f"cannot create the run directory '{directory}' ({key}): "
                          f"{err.strerror or err}; pick a writable {key}") from None
    probe = directory / f".nlpseq-write-test.{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise NlpseqError(f"cannot write in the run directory '{directory}' ({key}): "
                          f"{err.strerror or err}; pick a writable {key}") from None


class KeptConfigRecord:
    """A run's ``.hydra/`` files as they were before a command that continues the run in
    place (``resume=true``): Hydra rewrites them when the job starts, before nlpseq can
    check the new settings against the checkpoint, so a continuation refused or failed
    before it saved a step puts them back (``restore``) and the record still describes the
    run's checkpoints. Once ``last.ckpt`` has changed, the new record is the true one."""

    def __init__(self, directory: Path) -> None:
        folder = directory / ".hydra"
        self.files = {path: path.read_bytes() for path in sorted(folder.glob("*"))
                      if path.is_file()} if folder.is_dir() else {}
        self.last = directory / "checkpoints" / "last.ckpt"
        self.last_seen = self.stamp()

    def stamp(self) -> tuple[int, int] | None:
        stat = self.last.stat() if self.last.is_file() else None
        return (stat.st_mtime_ns, stat.st_size) if stat else None

    def restore(self) -> None:
        if self.stamp() != self.last_seen:  # the continuation trained and saved a step
            return
        for path, data in self.files.items():
            path.write_bytes(data)


class RunLock:
    """An exclusive lock on a run directory, held while one command writes in it.

    ``fcntl.flock`` on ``<dir>/.nlpseq.lock``. The kernel drops the lock when its process
    ends, however it ends, so the file a killed run leaves behind is not a lock: the next
    command takes it over. The file names its holder, for the refusal of a second command.
    """

    def __init__(self, directory: Path, key: str, command: str) -> None:
        self.path, self.key, self.command = directory / LOCK_FILE, key, command
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise NlpseqError naming the command that holds it. On a file
        system without locks (some network mounts) the command goes on unlocked."""
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise NlpseqError(f"cannot write in the run directory '{self.path.parent}' "
                                  f"({self.key}): {err.strerror or err}; pick a writable "
                                  f"{self.key}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.path.read_text(errors="replace").strip() or "another process"
                os.close(fd)
                raise NlpseqError(f"{self.path.parent} is in use by another nlpseq command "
                                  f"({holder}); wait for it to end or pick another "
                                  f"{self.key}") from None
            except OSError as err:
                os.close(fd)
                log.warning("Cannot lock %s (%s): a second command in this directory will "
                            "not be detected", self.path, err.strerror or err)
                return
            if self._same_file(fd):
                self._fd = fd
            else:  # the holder released and removed it between our open and our lock
                os.close(fd)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, (f"nlpseq-{self.command}, pid {os.getpid()} on "
                            f"{socket.gethostname()}, since {time.strftime('%H:%M:%S')}"
                            ).encode())

    def release(self) -> None:
        """Remove the file, then drop the lock (a waiting command sees the file is gone)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False
