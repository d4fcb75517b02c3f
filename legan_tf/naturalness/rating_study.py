"""A browser rating study: people rate face images 1-10 on a page served by `scripts/rating_server.py`.

The crowd study behind LEGAN's Perceptual Dataset, for your own faces (docs/rating_study.md): several raters
per image, each rater sees the images in an order of their own and never one image twice, attention checks
with known-clean and known-broken faces are mixed in, and the result is a ratings CSV
(`image,mean,std,source,n_ratings`) that `--data_format=ratings` reads.

Files, next to `output` (the aggregated CSV):

  <output>.log.csv     append-only: one line per rating (timestamp,rater,image,score,is_check,expected), written
                       and fsync'ed before the rater's page moves on. It is the study's only state: a restarted
                       server reads it back and continues; a half-written last line (a crash mid-write) is cut
                       off with a warning.
  <output>             image,mean,std,source,n_ratings: per image with at least one counted rating, the mean and
                       population std of the counted raters' scores. Paths are relative to the CSV's folder;
                       source is the image's folder (relative to --images), so a photo's variants stay in one
                       split. Rewritten atomically (temp file + os.replace) after every rating.
  <output>.raters.csv  per rater: ratings, checks passed and failed, whether excluded, the failed checks.

A rater whose failed attention checks exceed `allowed_failures` is excluded: none of their ratings count
(already given ones included), in the CSV or towards an image's target number of raters. They are reported on
the console when it happens, and in the raters file. They can go on rating; the page does not tell them.

HTTP (standard library only; JSON bodies; malformed requests get 400 with {"error": ...}):
  GET  /                 the page          GET /image/<token>   an image (opaque token)
  GET  /api/status       counts            POST /api/start {"name"} -> {"rater", "next"}
  POST /api/next {"rater"} -> next item    POST /api/rate {"rater", "image", "score"} -> next item
A next item is {"done": false, "image": token, "url", "rated", "remaining"} or {"done": true, "rated"}.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import glob
import hashlib
import importlib.resources
import io
import json
import math
import os
import random
import re
import secrets
import tempfile
import threading
import time
import urllib.parse
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from legan_tf.data import images as image_check
from legan_tf.data.manifests import IMAGE_EXTENSIONS  # what the ratings reader takes
from legan_tf.data.input_files import files_under
from legan_tf.errors import ConfigError
from legan_tf.local_http import LocalHandler, LocalServer

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SCORES = tuple(range(1, 11))
LOG_COLUMNS = ["timestamp", "rater", "image", "score", "is_check", "expected"]
OUTPUT_COLUMNS = ["image", "mean", "std", "source", "n_ratings"]
RATER_COLUMNS = ["rater", "ratings", "checks", "checks_passed", "checks_failed", "excluded", "failed_checks"]
CLEAN, BROKEN = "clean", "broken"
DEFAULT_RULE = "clean>=6,broken<=4"
# A rater name: what the log and the raters file call them (the page suggests a name or nickname).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
# An image shown to a rater is kept from other raters this long, so that several raters at once do not
# overshoot an image's target; a rater who walks away frees it after this.
RESERVATION_SECONDS = 600.0
MAX_BODY_BYTES = 16 * 1024
PROGRESS_EVERY = 25  # ratings between progress lines on the console
# The rating page (HTML, CSS and JavaScript in one file beside this module).
PAGE = importlib.resources.files("legan_tf.naturalness").joinpath("rating_study.html").read_text(encoding="utf-8")

class BadRequest(Exception):
    """A malformed request: HTTP 400."""


class Conflict(Exception):
    """A well-formed request that cannot be done (the rater rated that image already): HTTP 409."""


@dataclasses.dataclass(frozen=True)
class Face:
    key: str           # the path relative to the output CSV's folder, '/'-separated: how the log and CSV name it
    path: str          # on disk
    source: str        # its folder relative to --images (the folder's name for an image directly in it)
    token: str         # the opaque id in the page's URLs
    expected: str = ""  # "" for a study image; CLEAN or BROKEN for an attention check


@dataclasses.dataclass(frozen=True)
class AttentionRule:
    clean_min: float
    broken_max: float

    def passes(self, expected: str, score: int) -> bool:
        return score >= self.clean_min if expected == CLEAN else score <= self.broken_max

    def text(self, expected: str) -> str:
        return f"clean >= {self.clean_min:g}" if expected == CLEAN else f"broken <= {self.broken_max:g}"


def parse_attention_rule(text: str) -> AttentionRule:
    """'clean>=6,broken<=4' (either order, spaces allowed) -> AttentionRule."""
    found = {}
    for part in (text or "").split(","):
        match = re.fullmatch(r"\s*(clean)\s*>=\s*(\d+(?:\.\d+)?)\s*|\s*(broken)\s*<=\s*(\d+(?:\.\d+)?)\s*", part)
        if not match:
            found = None
            break
        name, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        found[name] = float(value)
    if not found or set(found) != {CLEAN, BROKEN}:
        raise ConfigError(f"--attention_rule={text!r}: expected 'clean>=X,broken<=Y' with X and Y on the 1-10 scale, "
                          f"e.g. {DEFAULT_RULE}")
    rule = AttentionRule(found[CLEAN], found[BROKEN])
    if not (1 <= rule.clean_min <= 10 and 1 <= rule.broken_max <= 10):
        raise ConfigError(f"--attention_rule={text!r}: X and Y must lie in [1, 10]")
    return rule


# --- finding images -------------------------------------------------------------------------------

def _walk_images(folder: str) -> Tuple[List[str], int]:
    """Image files under `folder` (recursive, sorted; hidden files and folders left out), and the count of
    other files ignored."""
    files = files_under(folder)
    found = [path for path in files if path.lower().endswith(IMAGE_EXTENSIONS)]
    return found, len(files) - len(found)


def _expand(items: Sequence[str], flag: str) -> List[str]:
    """Folders (recursive), files and glob patterns (`**` for any depth) -> image files, in order."""
    paths: List[str] = []
    for item in (item.strip() for item in items):
        if not item:
            continue
        if os.path.isdir(item):
            paths.extend(_walk_images(item)[0])
        elif os.path.isfile(item):
            paths.append(item)
        elif glob.has_magic(item):
            for match in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(match):
                    paths.extend(_walk_images(match)[0])
                elif match.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(match).startswith("."):
                    paths.append(match)
        else:
            raise ConfigError(f"{flag}={item}: no such folder or file, and not a glob pattern")
    return list(dict.fromkeys(paths))


def _unreadable(path: str) -> Optional[str]:
    """Why an image cannot be rated (not PNG/JPEG, corrupt, truncated, empty), or None."""
    try:
        image_check.inspect_rgb(path, convert_color=True)
    except image_check.ImageFault as fault:
        return str(fault)
    except OSError as error:
        return error.strerror or str(error)
    return None


def attention_from_ratings(csv_path: str, min_severity: float) -> Tuple[List[str], List[str]]:
    """Known-clean and known-broken faces of a scripts/make_naturalness.py ratings.csv: its `clean` rows, and
    its artifact rows of severity >= min_severity (generator outputs left out: a generator may do well)."""
    if not os.path.isfile(csv_path):
        raise ConfigError(f"--attention_from={csv_path}: no such file (give the ratings.csv that "
                          "scripts/make_naturalness.py wrote)")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in ("image", "kind", "severity") if column not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"--attention_from={csv_path}: no {', '.join(missing)} column (expected the ratings.csv "
                              "of scripts/make_naturalness.py: image,...,kind,severity,...)")
        rows = list(reader)
    base = os.path.dirname(os.path.abspath(csv_path))
    clean, broken = [], []
    for row in rows:
        image, kind = (row.get("image") or "").strip(), (row.get("kind") or "").strip()
        if not image:
            continue
        path = image if os.path.isabs(image) else os.path.normpath(os.path.join(base, image))
        try:
            severity = float(row.get("severity") or "nan")
        except ValueError:
            continue
        if kind == CLEAN:
            clean.append(path)
        elif kind != "generator" and severity >= min_severity:
            broken.append(path)
    if not clean or not broken:
        raise ConfigError(f"--attention_from={csv_path}: found {len(clean)} clean rows and {len(broken)} rows of "
                          f"severity >= {min_severity:g}; attention checks need both (lower "
                          "--attention_min_severity, or give --attention_clean/--attention_broken)")
    return clean, broken


# --- the study ------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _token(role: str, key: str) -> str:
    return hashlib.sha256(f"{role}\0{key}".encode("utf-8")).hexdigest()[:16]


def _fsync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_csv_atomically(path: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Writes a CSV to a temp file beside `path`, fsyncs it and renames it over `path`: a reader (or a crash)
    sees the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise


@dataclasses.dataclass
class _Rater:
    name: str
    scores: Dict[str, int] = dataclasses.field(default_factory=dict)         # study key -> score
    checks: List[Tuple[str, str, int, bool]] = dataclasses.field(default_factory=list)  # key, expected, score, ok
    seen: Set[str] = dataclasses.field(default_factory=set)                  # keys rated in either role
    pending: Optional[Tuple[str, float]] = None                              # (token, since) shown, not rated

    @property
    def failed(self) -> int:
        return sum(1 for check in self.checks if not check[3])


class RatingStudy:
    """The study's state: images, checks, ratings (from the log) and raters. Thread-safe: every public method
    takes one lock, and a rating is in the log (fsync'ed) before the method returns."""

    def __init__(self, images: str, output: str, raters_per_image: int = 5, attention_clean: Sequence[str] = (),
                 attention_broken: Sequence[str] = (), attention_from: Optional[str] = None,
                 attention_every: int = 10, attention_rule: str = DEFAULT_RULE, allowed_failures: int = 0,
                 attention_min_severity: float = 0.8, seed: int = 0, overwrite: bool = False,
                 say: Callable[[str], None] = None):
        self.say = say or (lambda line: print(line, flush=True))
        self._lock = threading.RLock()
        if not output:
            raise ConfigError("--output is required: the ratings CSV to write (e.g. data/my_study/ratings.csv)")
        if not output.lower().endswith(".csv"):
            raise ConfigError(f"--output={output}: give a .csv file name (the ratings CSV)")
        if os.path.isdir(output):
            raise ConfigError(f"--output={output} is a folder; give the ratings CSV's file name")
        if raters_per_image < 1:
            raise ConfigError(f"--raters_per_image={raters_per_image}: must be at least 1")
        if attention_every < 0 or allowed_failures < 0:
            raise ConfigError("--attention_every and --attention_allowed_failures must be >= 0")
        self.rule = parse_attention_rule(attention_rule)
        self.output = os.path.abspath(output)
        self.folder = os.path.dirname(self.output)
        self.log_path = self.output + ".log.csv"
        self.raters_path = self.output + ".raters.csv"
        self.raters_per_image = raters_per_image
        self.attention_every = attention_every
        self.allowed_failures = allowed_failures
        self.seed = seed

        if not images:
            raise ConfigError("--images is required: the folder of face images to rate")
        if not os.path.isdir(images):
            raise ConfigError(f"--images={images}: no such folder")
        root = os.path.abspath(images)
        paths, ignored = _walk_images(root)
        if not paths:
            raise ConfigError(f"--images={images}: no images found ({', '.join(IMAGE_EXTENSIONS)}, searched "
                              "recursively" + (f"; {ignored} other file(s) ignored" if ignored else "") + ")")
        self.skipped: List[Tuple[str, str]] = []
        self.study: List[Face] = []
        for path in paths:
            reason = _unreadable(path)
            if reason:
                self.skipped.append((os.path.relpath(path, root), reason))
                continue
            key = self._key(path)
            parent = os.path.relpath(os.path.dirname(path), root)
            source = os.path.basename(root) if parent == "." else parent.replace(os.sep, "/")
            self.study.append(Face(key, path, source, _token("study", key)))
        if not self.study:
            raise ConfigError(f"--images={images}: none of its {len(paths)} images can be read (first: "
                              f"{self.skipped[0][0]}: {self.skipped[0][1]})")

        clean, broken = _expand(attention_clean, "--attention_clean"), _expand(attention_broken, "--attention_broken")
        if attention_from:
            from_clean, from_broken = attention_from_ratings(attention_from, attention_min_severity)
            clean, broken = clean + from_clean, broken + from_broken
        self.checks: List[Face] = []
        self.skipped_checks: List[Tuple[str, str]] = []
        for expected, group in ((CLEAN, clean), (BROKEN, broken)):
            for path in dict.fromkeys(os.path.abspath(p) for p in group):
                reason = _unreadable(path)
                if reason:
                    self.skipped_checks.append((path, reason))
                    continue
                key = self._key(path)
                self.checks.append(Face(key, path, "", _token(f"check-{expected}", key), expected))
        if attention_every and (clean or broken) and not self.checks:
            raise ConfigError("none of the attention-check images can be read (first: "
                              f"{self.skipped_checks[0][0]}: {self.skipped_checks[0][1]})")

        self.faces: Dict[str, Face] = {face.token: face for face in self.study + self.checks}
        self.study_by_key = {face.key: face for face in self.study}
        self.checks_by_key = {(face.key, face.expected): face for face in self.checks}
        self.raters: Dict[str, _Rater] = {}
        self.scores: Dict[str, Dict[str, int]] = {face.key: {} for face in self.study}  # key -> rater -> score
        self.orphans = 0       # logged study ratings of images no longer under --images
        self.ratings = 0       # ratings in the log, both roles
        self._orders: Dict[str, Tuple[List[str], List[Face]]] = {}
        self._complete_announced = False

        existing_log = os.path.exists(self.log_path)
        if os.path.exists(self.output) and not existing_log and not overwrite:
            raise ConfigError(f"--output={output} exists but has no rating log {os.path.basename(self.log_path)} "
                              "beside it, so it is not this tool's output (or its log was removed); choose another "
                              "--output, or pass --overwrite to replace it")
        try:
            os.makedirs(self.folder, exist_ok=True)
            if existing_log:
                self._read_log()
            else:
                with open(self.log_path, "w", newline="", encoding="utf-8") as handle:
                    csv.writer(handle).writerow(LOG_COLUMNS)
                    handle.flush()
                    os.fsync(handle.fileno())
                _fsync_folder(self.folder)
            self._write_outputs()   # the CSV and the raters file always follow from the log
        except OSError as error:
            raise ConfigError(f"--output={output}: cannot write the study's files in {self.folder}: "
                              f"{error.strerror or error}") from None

    # --- paths and orders -----------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return os.path.relpath(os.path.abspath(path), self.folder).replace(os.sep, "/")

    def _order(self, rater: str) -> Tuple[List[str], List[Face]]:
        """The rater's own order of the study images, and of the checks (clean and broken alternating)."""
        if rater not in self._orders:
            rng = random.Random(f"{self.seed}/{rater}")
            keys = [face.key for face in self.study]
            rng.shuffle(keys)
            clean = [face for face in self.checks if face.expected == CLEAN]
            broken = [face for face in self.checks if face.expected == BROKEN]
            rng.shuffle(clean)
            rng.shuffle(broken)
            first, second = (clean, broken) if rng.random() < 0.5 else (broken, clean)
            checks = [face for pair in zip(first, second) for face in pair]
            checks += first[len(second):] + second[len(first):]
            self._orders[rater] = (keys, checks)
        return self._orders[rater]

    # --- the log ----------------------------------------------------------------------------------

    def _read_log(self) -> None:
        with open(self.log_path, "rb") as handle:
            data = handle.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            partial = data[cut:].decode("utf-8", "replace")
            self.say(f"warning: {self.log_path}: ignoring a half-written last line (a crash while writing?): "
                     f"{partial[:80]!r}")
            with open(self.log_path, "r+b") as handle:
                handle.truncate(cut)
                handle.flush()
                os.fsync(handle.fileno())
            data = data[:cut]
        text = data.decode("utf-8", "replace")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:   # an empty file: a crash before the header was written
            with open(self.log_path, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(LOG_COLUMNS)
            return
        if header != LOG_COLUMNS:
            raise ConfigError(f"{self.log_path}: not a rating log (header {','.join(header)!r}; expected "
                              f"{','.join(LOG_COLUMNS)!r})")
        bad, first_bad, duplicates = 0, None, 0
        for line, row in enumerate(reader, start=2):
            parsed = self._parse_log_row(row)
            if parsed is None:
                bad += 1
                first_bad = first_bad or line
                continue
            if not self._apply(*parsed, announce=False):
                duplicates += 1
        if bad:
            self.say(f"warning: {self.log_path}: ignored {bad} malformed line(s) (first: line {first_bad})")
        if duplicates:
            self.say(f"warning: {self.log_path}: ignored {duplicates} repeated rating(s) of an image by the same rater")
        if self.orphans:
            self.say(f"warning: {self.log_path}: {self.orphans} rating(s) of images no longer under --images are kept "
                     "in the log but left out of the CSV")
        if self.ratings:
            excluded = [rater for rater in self.raters.values() if self._excluded(rater)]
            self.say(f"resumed from {self.log_path}: {self.ratings} ratings by {len(self.raters)} rater(s)"
                     + ("; excluded for failed attention checks: "
                        + ", ".join(f"{r.name} ({r.failed} of {len(r.checks)} failed)" for r in excluded)
                        if excluded else ""))

    @staticmethod
    def _parse_log_row(row: List[str]):
        if len(row) != len(LOG_COLUMNS):
            return None
        _, rater, key, score, is_check, expected = row
        if not NAME_PATTERN.match(rater) or not key or score not in {str(s) for s in SCORES}:
            return None
        if (is_check, expected) not in {("0", ""), ("1", CLEAN), ("1", BROKEN)}:
            return None
        return rater, key, int(score), expected

    def _append_log(self, rater: str, key: str, score: int, expected: str) -> None:
        line = io.StringIO()
        csv.writer(line).writerow([_now(), rater, key, score, 1 if expected else 0, expected])
        with open(self.log_path, "a", newline="", encoding="utf-8") as handle:
            handle.write(line.getvalue())
            handle.flush()
            os.fsync(handle.fileno())

    def _apply(self, rater_name: str, key: str, score: int, expected: str, announce: bool) -> bool:
        """Adds one rating to the state; False when the rater has rated that image in that role already."""
        rater = self.raters.setdefault(rater_name, _Rater(rater_name))
        if expected:
            if any(check[0] == key and check[1] == expected for check in rater.checks):
                return False
            passed = self.rule.passes(expected, score)
            was_excluded = self._excluded(rater)
            rater.checks.append((key, expected, score, passed))
            if announce and not passed:
                self.say(f"attention check failed: rater {rater.name} rated a known-{expected} face {score} (rule "
                         f"{self.rule.text(expected)}): {key}; {rater.failed} of {len(rater.checks)} of their checks "
                         f"failed (more than {self.allowed_failures} excludes a rater)")
            if announce and self._excluded(rater) and not was_excluded:
                self.say(f"rater {rater.name} excluded: their {len(rater.scores)} rating(s) so far and all later ones "
                         f"are left out of {os.path.basename(self.output)}")
        else:
            if key in rater.scores:
                return False
            rater.scores[key] = score
            if key in self.scores:
                self.scores[key][rater_name] = score
            else:
                self.orphans += 1
        rater.seen.add(key)
        self.ratings += 1
        return True

    # --- standing and counts ----------------------------------------------------------------------

    def _excluded(self, rater: _Rater) -> bool:
        return rater.failed > self.allowed_failures

    def _counted(self, key: str) -> List[int]:
        return [score for name, score in self.scores[key].items() if not self._excluded(self.raters[name])]

    def _needs_more(self, key: str) -> bool:
        return len(self._counted(key)) < self.raters_per_image

    # --- outputs ----------------------------------------------------------------------------------

    def _write_outputs(self) -> None:
        rows = []
        for face in self.study:
            scores = self._counted(face.key)
            if not scores:
                continue
            mean = sum(scores) / len(scores)
            std = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
            rows.append([face.key, f"{mean:.4f}", f"{std:.4f}", face.source, len(scores)])
        write_csv_atomically(self.output, OUTPUT_COLUMNS, rows)
        raters = []
        for rater in sorted(self.raters.values(), key=lambda r: r.name):
            failed = ";".join(f"{key}={score} ({self.rule.text(expected)})"
                              for key, expected, score, passed in rater.checks if not passed)
            raters.append([rater.name, len(rater.scores), len(rater.checks), len(rater.checks) - rater.failed,
                           rater.failed, 1 if self._excluded(rater) else 0, failed])
        write_csv_atomically(self.raters_path, RATER_COLUMNS, raters)

    # --- what a rater sees ------------------------------------------------------------------------

    def _reserved_by_others(self, rater: str, now: float) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for other in self.raters.values():
            if other.name != rater and other.pending and now - other.pending[1] < RESERVATION_SECONDS:
                face = self.faces[other.pending[0]]
                if not face.expected:
                    counts[face.key] = counts.get(face.key, 0) + 1
        return counts

    def _next(self, name: str) -> dict:
        rater = self.raters.setdefault(name, _Rater(name))
        now = time.monotonic()
        keys, checks = self._order(name)
        if rater.pending and now - rater.pending[1] < RESERVATION_SECONDS:
            face = self.faces[rater.pending[0]]
            if face.key not in rater.seen:
                return self._item(rater, face)
        rater.pending = None
        reserved = self._reserved_by_others(name, now)
        study = next((key for key in keys if key not in rater.seen
                      and len(self._counted(key)) + reserved.get(key, 0) < self.raters_per_image), None)
        if study is None:
            return {"done": True, "rated": len(rater.scores) + len(rater.checks)}
        face = self.study_by_key[study]
        if self.attention_every and len(rater.scores) >= (len(rater.checks) + 1) * self.attention_every:
            face = next((check for check in checks if check.key not in rater.seen), face)
        rater.pending = (face.token, now)
        return self._item(rater, face)

    def _item(self, rater: _Rater, face: Face) -> dict:
        remaining = sum(1 for key in self.scores if key not in rater.seen and self._needs_more(key))
        return {"done": False, "image": face.token, "url": f"/image/{face.token}",
                "rated": len(rater.scores) + len(rater.checks), "remaining": remaining}

    # --- the API (each under the lock) ------------------------------------------------------------

    def start(self, name: str) -> dict:
        """A rater's session: a name (spaces become '_'), or a fresh id for an empty one."""
        if not isinstance(name, str):
            raise BadRequest("'name' must be a string")
        name = re.sub(r"\s+", "_", name.strip())
        with self._lock:
            if not name:
                name = f"rater-{secrets.token_hex(3)}"
                while name in self.raters:
                    name = f"rater-{secrets.token_hex(3)}"
            if not NAME_PATTERN.match(name):
                raise BadRequest("a name may use letters, digits, '.', '_' and '-' (at most 40, starting with a "
                                 "letter or digit)")
            if name not in self.raters:
                self.say(f"rater {name} started")
            return {"rater": name, "next": self._next(name)}

    def next(self, name: str) -> dict:
        with self._lock:
            return self._next(self._known_name(name))

    def rate(self, name: str, token: str, score: int) -> dict:
        name = self._known_name(name)
        if not isinstance(token, str) or token not in self.faces:
            raise BadRequest("'image' must be the token of an image this server showed")
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            raise BadRequest("'score' must be an integer from 1 to 10")
        face = self.faces[token]
        with self._lock:
            rater = self.raters.setdefault(name, _Rater(name))
            if face.key in rater.seen:
                raise Conflict(f"{name} has rated this image already")
            self._append_log(name, face.key, score, face.expected)   # on disk before anything else
            self._apply(name, face.key, score, face.expected, announce=True)
            if rater.pending and rater.pending[0] == token:
                rater.pending = None
            try:
                self._write_outputs()
            except OSError as error:  # the rating is safe in the log; the CSV catches up on the next one
                self.say(f"warning: cannot rewrite {self.output}: {error.strerror or error} (the rating is in the log)")
            self._report_progress()
            return self._next(name)

    def _known_name(self, name) -> str:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise BadRequest("'rater' must be the rater name that /api/start returned")
        return name

    def _report_progress(self) -> None:
        complete = sum(1 for key in self.scores if not self._needs_more(key))
        if complete == len(self.scores) and not self._complete_announced:
            self._complete_announced = True
            self.say(f"all {len(self.scores)} images have {self.raters_per_image} counted rating(s): the study is "
                     f"complete ({os.path.basename(self.output)})")
        elif self.ratings % PROGRESS_EVERY == 0:
            self.say(f"{self.ratings} ratings; {complete} of {len(self.scores)} images complete")

    def status(self) -> dict:
        with self._lock:
            return {
                "images": len(self.study), "checks": len(self.checks), "raters_per_image": self.raters_per_image,
                "complete": sum(1 for key in self.scores if not self._needs_more(key)),
                "rated": sum(1 for key in self.scores if self._counted(key)),
                "ratings": self.ratings,
                "raters": sorted(self.raters),
                "excluded": sorted(r.name for r in self.raters.values() if self._excluded(r)),
            }

    def describe(self) -> str:
        """Start-up lines: what is being rated, the checks, what was skipped."""
        lines = [f"{len(self.study)} images to rate, {self.raters_per_image} rater(s) each"
                 + (f"; skipped {len(self.skipped)} unreadable (first: {self.skipped[0][0]}: {self.skipped[0][1]})"
                    if self.skipped else "")]
        clean = sum(1 for face in self.checks if face.expected == CLEAN)
        if self.attention_every and self.checks:
            lines.append(f"attention checks: {clean} known-clean and {len(self.checks) - clean} known-broken faces, "
                         f"one after every {self.attention_every} images; rule {self.rule.text(CLEAN)}, "
                         f"{self.rule.text(BROKEN)}; a rater failing more than {self.allowed_failures} is excluded"
                         + (f"; skipped {len(self.skipped_checks)} unreadable" if self.skipped_checks else ""))
        elif self.checks:
            lines.append("attention checks off (--attention_every=0): the check images are not shown")
        else:
            lines.append("no attention checks (give --attention_from, or --attention_clean and --attention_broken)")
        lines.append(f"writing {self.output} (log {os.path.basename(self.log_path)}, raters "
                     f"{os.path.basename(self.raters_path)})")
        return "\n".join(lines)

    def summary(self) -> str:
        status = self.status()
        return (f"{status['ratings']} ratings by {len(status['raters'])} rater(s)"
                + (f" ({len(status['excluded'])} excluded: {', '.join(status['excluded'])})" if status["excluded"]
                   else "")
                + f"; {status['complete']} of {status['images']} images complete, {status['rated']} in "
                f"{self.output}")


# --- HTTP -----------------------------------------------------------------------------------------

class _Handler(LocalHandler):
    server_version = "legan-rating-study"
    timeout = 30  # seconds a client may take to send its request

    @property
    def study(self) -> RatingStudy:
        return self.server.study

    def do_GET(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(200, PAGE.encode("utf-8"), "text/html; charset=utf-8")
        elif path.startswith("/image/"):
            face = self.study.faces.get(path[len("/image/"):])
            if face is None:
                self._json(404, {"error": "no such image"})
                return
            try:
                with open(face.path, "rb") as handle:
                    body = handle.read()
            except OSError as error:
                self._json(500, {"error": f"cannot read the image: {error.strerror}"})
                return
            self._send(200, body, CONTENT_TYPES[os.path.splitext(face.path)[1].lower()], cache="private, max-age=3600")
        elif path == "/api/status":
            self._json(200, self.study.status())
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._json(404, {"error": f"no such page: {path}"})

    def _body(self) -> dict:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise BadRequest("a JSON body with a Content-Length is required")
        length = int(length)
        if length > MAX_BODY_BYTES:
            raise BadRequest(f"request body too large ({length} bytes; at most {MAX_BODY_BYTES})")
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise BadRequest("request body shorter than its Content-Length")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadRequest("the body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def do_POST(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        routes = {
            "/api/start": lambda body: self.study.start(body.get("name", "")),
            "/api/next": lambda body: self.study.next(body.get("rater")),
            "/api/rate": lambda body: self.study.rate(body.get("rater"), body.get("image"), body.get("score")),
        }
        if path not in routes:
            self._json(404, {"error": f"no such endpoint: {path}"})
            return
        try:
            self._json(200, routes[path](self._body()))
        except BadRequest as error:
            self._json(400, {"error": str(error)})
        except Conflict as error:
            self._json(409, {"error": str(error)})
        except OSError as error:  # the log or the CSV could not be written: the rating was not taken
            self.study.say(f"error: cannot write the study's files: {error}")
            self._json(503, {"error": "the server cannot save ratings right now; try again"})
        except Exception as error:  # noqa: BLE001 (one request fails, the server goes on)
            self.study.say(f"error: {path}: {type(error).__name__}: {error}")
            self._json(500, {"error": "internal error"})


class RatingServer(LocalServer):
    """One thread per request; the study's lock orders the ratings."""

    def __init__(self, study: Optional[RatingStudy], host: str, port: int):
        self.study = study
        super().__init__(host, port, _Handler)

    def say(self, line: str) -> None:
        self.study.say(line)


def serve(images: str, output: str, host: str = "127.0.0.1", port: int = 8000, **study_options) -> RatingStudy:
    """scripts/rating_server.py: builds the study, serves it until Ctrl-C (or SIGTERM), prints a summary."""
    server = RatingServer(None, host, port)   # the port first: a port in use leaves no files behind
    try:
        server.study = study = RatingStudy(images, output, **study_options)
    except BaseException:
        server.server_close()
        raise
    study.say(study.describe())
    study.say(f"rating study at {server.url} (Ctrl-C stops it; every rating is saved as it is given)")
    if host in ("0.0.0.0", "::", ""):
        study.say("note: listening on every network interface: anyone who can reach this machine can rate (there is "
                  "no login); raters on the LAN open http://<this machine's address>:"
                  f"{server.server_address[1]}/")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    study.say(f"stopped: {study.summary()}")
    return study
