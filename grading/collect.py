"""Collect a class's uploads into ``<student>/<notebook>.ipynb`` and account for every file.

What an instructor hands the harness is whatever the LMS gave them. Every file in it ends in
exactly one of two places: **graded** under a student id, or **listed** by its upload name
with the reason it was not graded (never silently dropped). Recognised layouts:

=============================  =====================================================  =========
layout                         example path in the upload                             student
=============================  =====================================================  =========
course folders                 ``alice/01-kmeans/kmeans.ipynb``                       ``alice``
plain folders                  ``alice/kmeans.ipynb``                                 ``alice``
Canvas                         ``smithjohn_LATE_12345_67890_kmeans.ipynb``            ``smithjohn``
Moodle                         ``Quentin Jones_5554_assignsubmission_file_/x.ipynb``  ``quentin-jones``
Blackboard                     ``Unit 1_jdoe_attempt_2026-01-02-10-00-00_kmeans.ipynb``  ``jdoe``
nbgrader ``zip_collect`` style ``bob-smith_anything_kmeans.ipynb``                    ``bob-smith``
=============================  =====================================================  =========

Zips are opened wherever they are (nested too). The notebook is recognised by its name: the
assignment's notebook names (``case_study_cnns.ipynb``, underscores and all), also renamed as
LMSs and browsers do (``kmeans-1.ipynb``, ``kmeans (2).ipynb``, ``Kmeans.ipynb``): graded and
flagged ``renamed``. A folder with one notebook of another name, for a one-notebook
assignment, is graded and flagged too. Names with spaces or accents become ids of ``a-z0-9._-``
(``Jürgen Müller`` -> ``jurgen-muller``); a **roster** CSV (columns among ``lms_id``,
``student_id``, ``name``, ``email``) maps LMS ids, names or e-mail addresses to the course's
ids. Two uploads that claim the same student's notebook never abort the batch: a clash is
resolved by the LMS's own submission time where there is one (the newest wins, the other is
listed), else both are listed and that student is not graded until a human decides.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

JUNK = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.DS_Store|Thumbs\.db|desktop\.ini)(/|$)",
                  re.I)
CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")
MOODLE_DIR = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_?$")
BLACKBOARD = re.compile(r"^(?P<assignment>.+?)_(?P<user>[^_/]+)_attempt_"
                        r"(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})"
                        r"(?:_(?P<file>.+)|\.txt)?$")
ASSIGNMENT_DIR = re.compile(r"^\d\d-[A-Za-z0-9_-]+$")   # 01-kmeans, 06-case-study-cnns
RENAMED = re.compile(r"^(?P<stem>.+?)(?:[-_ ]\(?\d+\)?|\s*\(\d+\)| copy)+$", re.I)
MAX_ZIP_BYTES = 2 << 30       # an upload that unpacks to more than this is refused
MAX_ZIP_MEMBERS = 100_000


@dataclass
class FileEntry:
    """One file of the upload and what became of it."""

    upload: str                 # where it was in the upload (zip members as zip!member)
    status: str = "listed"      # "graded" | "listed" | "ignored" (operating-system clutter)
    student: str | None = None
    notebook: str | None = None
    reason: str = ""
    sha256: str | None = None
    late: bool = False
    timestamp: str | None = None  # the LMS's submission time, when the upload says

    def as_dict(self):
        return asdict(self)


@dataclass
class Collection:
    """What ``collect`` found: ``students[id] = folder`` holding ``<notebook>.ipynb`` files
    ready to grade, ``files``: every file of the upload, ``flags[id]``: problems to show
    (renamed notebook, not on the roster, late without a due date ...)."""

    students: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    flags: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)      # student id -> display name
    timestamps: dict = field(default_factory=dict)  # student id -> LMS submission time
    late: set = field(default_factory=set)          # ids the LMS marked LATE

    def flag(self, student, kind, detail, cell=None):
        entry = {"kind": kind, "cell": cell, "detail": detail}
        if entry not in self.flags.setdefault(student, []):
            self.flags[student].append(entry)

    @property
    def listed(self):
        return [f for f in self.files if f.status == "listed"]


# --------------------------------------------------------------------------- ids and names

def slug(name):
    """A student id nbgrader and every file system accept: ``Jürgen Müller`` ->
    ``jurgen-muller``."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._").lower()
    return text


def _norm_name(name):
    return re.sub(r"[^a-z0-9]", "", slug(name))


class Roster:
    """LMS id / name / e-mail -> the course's student id (a CSV with a header row)."""

    COLUMNS = ("lms_id", "student_id", "name", "email")

    def __init__(self, rows=()):
        self.by_key = {}
        self.people = {}
        for row in rows:
            sid = (row.get("student_id") or "").strip()
            if not sid:
                continue
            sid_ok = slug(sid)
            if sid_ok != sid:
                raise ValueError(f"roster: student_id {sid!r} is not a usable id (use letters, "
                                 f"digits, '.', '_' or '-', e.g. {sid_ok!r})")
            self.people[sid] = {k: (row.get(k) or "").strip() for k in self.COLUMNS}
            for key in (row.get("lms_id"), row.get("email"), row.get("name"), sid):
                key = (key or "").strip()
                if key:
                    self.by_key[key.lower()] = sid
                    self.by_key[_norm_name(key)] = sid
            email = (row.get("email") or "").strip()
            if "@" in email:
                self.by_key[email.split("@")[0].lower()] = sid

    @classmethod
    def read(cls, path):
        if path is None:
            return cls()
        path = Path(path)
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            if "student_id" not in fields:
                raise ValueError(f"roster {path}: needs a header row with a student_id column "
                                 f"and any of lms_id, name, email (found: {fields})")
            rows = [{k.strip().lower(): v for k, v in r.items() if k} for r in reader]
        return cls(rows)

    def __bool__(self):
        return bool(self.people)

    def find(self, *keys):
        for key in keys:
            if not key:
                continue
            for k in (str(key).lower(), _norm_name(key)):
                if k in self.by_key:
                    return self.by_key[k]
        return None


# --------------------------------------------------------------------------- reading the upload

@dataclass
class _File:
    upload: str      # display path
    parts: tuple     # path components inside the upload (zip members flattened in)
    data: bytes | None = None
    path: Path | None = None

    def read(self):
        return self.data if self.data is not None else self.path.read_bytes()


def _walk(root: Path):
    """Every file of the upload, zips opened (nested too), as ``_File``s."""
    root = Path(root)
    if root.is_file():
        items = [(root, (root.name,))]
    else:
        items = [(p, p.relative_to(root).parts) for p in sorted(root.rglob("*")) if p.is_file()]
    out = []
    for path, parts in items:
        display = "/".join(parts)
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            out.extend(_walk_zip(path.read_bytes(), display, parts[:-1]))
        else:
            out.append(_File(display, tuple(parts), path=path))
    return out


def _walk_zip(blob, display, prefix, depth=0):
    import io

    out = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            return [_File(display, prefix + (Path(display).name,), data=b"")]
        for info in infos:
            name = _member_name(info)
            member = PurePosixPath(name)
            if member.is_absolute() or ".." in member.parts:
                out.append(_File(f"{display}!{name}", ("UNSAFE",), data=b""))
                continue
            data = zf.read(info)
            shown = f"{display}!{name}"
            if member.suffix.lower() == ".zip" and depth < 3 and zipfile.is_zipfile(io.BytesIO(data)):
                out.extend(_walk_zip(data, shown, prefix + member.parts[:-1], depth + 1))
            else:
                out.append(_File(shown, prefix + member.parts, data=data))
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
        out.append(_File(display, ("BADZIP", str(exc)[:100]), data=b""))
    return out


def _member_name(info):
    """Zip member names from Windows/macOS LMS exports are often cp437-decoded UTF-8."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


# --------------------------------------------------------------------------- matching

def _match_notebook(filename, names):
    """(notebook name, renamed?) for a file name, or (None, False). ``names`` are the
    assignment's notebook names without ``.ipynb``."""
    stem = filename[:-6] if filename.lower().endswith(".ipynb") else None
    if stem is None:
        return None, False
    for n in names:  # exact, or <anything>_<name> (LMS prefixes)
        if stem == n:
            return n, False
    for n in sorted(names, key=len, reverse=True):
        if stem.endswith("_" + n) or stem.endswith(" " + n):
            return n, False
    bare = stem
    m = RENAMED.match(stem)
    if m:
        bare = m.group("stem")
    for n in names:
        if bare.lower() == n.lower() or bare.lower().endswith("_" + n.lower()):
            return n, True
    return None, False


def _parse(file: _File, assignment, names, others):
    """Who and which notebook a file claims to be: dict(student_hint, lms_id, notebook,
    renamed, late, timestamp, layout) or a reason it cannot be placed."""
    parts = list(file.parts)
    if parts and parts[0] in ("UNSAFE", "BADZIP"):
        return None, ("an unsafe path inside a zip (absolute or ..): not extracted"
                      if parts[0] == "UNSAFE" else f"a zip that cannot be opened ({parts[1]})")
    filename = parts[-1]
    info = {"student": None, "lms_id": None, "name": None, "late": False, "timestamp": None,
            "layout": None}
    # Folder layouts: <student>/<assignment>/nb, <student>/nb, Moodle folders.
    folders = parts[:-1]
    for folder in folders:
        m = MOODLE_DIR.match(folder)
        if m:
            info.update(name=m.group("name"), lms_id=m.group("uid"), layout="moodle")
            break
    else:
        if len(folders) >= 2 and folders[-1] == assignment:
            info.update(student=folders[-2], name=folders[-2], layout="course folders")
        elif assignment in folders:
            k = folders.index(assignment)
            if k >= 1:
                info.update(student=folders[k - 1], name=folders[k - 1], layout="course folders")
        elif len(folders) >= 2 and ASSIGNMENT_DIR.match(folders[-1]):
            info.update(student=folders[-2], name=folders[-2], layout="course folders")
        elif folders and not ASSIGNMENT_DIR.match(folders[-1]):
            info.update(student=folders[-1], name=folders[-1], layout="plain folders")
    # File-name layouts (the flat LMS downloads): only when no folder named the student.
    fname = filename
    if info["layout"] is None:
        m = CANVAS.match(filename)
        b = BLACKBOARD.match(filename)
        if m:
            info.update(name=m.group("name"), lms_id=m.group("uid"), late=bool(m.group("late")),
                        layout="Canvas")
            fname = m.group("file")
        elif b and b.group("file"):
            ts = datetime.strptime(b.group("ts"), "%Y-%m-%d-%H-%M-%S")
            info.update(name=b.group("user"), student=b.group("user"), layout="Blackboard",
                        timestamp=ts.isoformat(sep=" "))
            fname = b.group("file")
        elif b:
            return info, "BLACKBOARD-SUMMARY"
        else:
            nb, _ = _match_notebook(filename, names + list(others))
            stem = filename[:-6]
            cut = stem.lower().rfind("_" + (nb or "").lower()) if nb else -1
            if cut > 0:
                prefix, fname = stem[:cut], stem[cut + 1:] + ".ipynb"  # <student>[_anything]
                info.update(layout="zip_collect names")
                late = re.search(r"_LATE(?=_|$)", prefix)
                if late:
                    info["late"] = True
                    prefix = prefix[:late.start()] + prefix[late.end():]
                att = re.search(r"_attempt_[0-9:_ -]+$", prefix)
                if att:
                    prefix = prefix[:att.start()]
                ids = re.findall(r"(?:^|_)(\d+)(?=_|$)", prefix)
                name = re.sub(r"(?:^|_)\d+(?=_|$)", "", prefix).strip("_")
                info.update(name=name or prefix, lms_id=ids[0] if ids else None)
    notebook, renamed = _match_notebook(fname, names)
    info.update(notebook=notebook, renamed=renamed, filename=fname, elsewhere=None)
    if notebook is None:
        other, _ = _match_notebook(fname, list(others))
        if other is not None:
            info["elsewhere"] = f"{other}.ipynb belongs to {others[other]}, not {assignment}"
    return info, None


def _who(info, roster: Roster):
    """Student id for a parsed file, and a problem (or None)."""
    sid = roster.find(info.get("lms_id"), info.get("student"), info.get("name")) if roster \
        else None
    if sid:
        return sid, None
    raw = info.get("student") or info.get("name")
    if not raw:
        return None, "no student name in its path"
    sid = slug(raw)
    if not sid:
        return None, f"the student name {raw!r} has no letters or digits to make an id from"
    problem = None
    if roster:
        problem = (f"{raw!r} (LMS id {info.get('lms_id') or '-'}) is not on the roster: "
                   f"graded as {sid!r}")
    return sid, problem


def collect(submissions, assignment, names, dest: Path, *, roster: Roster | None = None,
            others=None):
    """Sort an upload into ``dest/<student>/<notebook>.ipynb`` (see module docs).

    ``names``: the assignment's notebook names (no ``.ipynb``); ``others``: {notebook name:
    assignment} of the course's other assignments (their files are listed as such, never
    graded as this one). Returns a ``Collection``."""
    roster = roster or Roster()
    names = list(names)
    others = {k: v for k, v in (others or {}).items() if k not in names}
    result = Collection()
    claims = {}  # (student, notebook) -> [(entry, _File, info)]
    for f in _walk(submissions):
        entry = FileEntry(upload=f.upload)
        result.files.append(entry)
        if JUNK.search(f.upload.replace("!", "/")) or f.parts[-1].startswith("._"):
            entry.status, entry.reason = "ignored", "operating-system clutter"
            continue
        info, problem = _parse(f, assignment, names, others)
        if problem == "BLACKBOARD-SUMMARY":
            entry.status, entry.reason = "ignored", "Blackboard's attempt summary (text)"
            continue
        if problem:
            entry.reason = problem
            continue
        is_nb = f.parts[-1].lower().endswith(".ipynb")
        sid, who_problem = _who(info, roster)
        entry.student = sid
        entry.late = info["late"]
        entry.timestamp = info["timestamp"]
        if not is_nb:
            if info["layout"] == "course folders" and f.parts[-1] == "timestamp.txt":
                entry.status, entry.reason = "ignored", "nbgrader's timestamp file (read)"
                _read_timestamp(f, sid, result)
                continue
            entry.reason = "not a notebook (.ipynb)"
            if sid:
                result.flag(sid, "not-a-notebook", f"{f.upload}: not a notebook, not graded")
            continue
        if sid is None:
            entry.reason = f"cannot tell whose it is: {who_problem}"
            continue
        if info["notebook"] is None:
            entry.reason = info["elsewhere"] or (
                f"not a notebook of {assignment} (expected "
                f"{', '.join(n + '.ipynb' for n in names)})")
            if info["elsewhere"]:
                result.flag(sid, "wrong-assignment", f"{f.upload}: {info['elsewhere']}")
            else:
                claims.setdefault((sid, None), []).append((entry, f, info))
            continue
        if who_problem:
            result.flag(sid, "not-on-roster", who_problem)
        result.names.setdefault(sid, info.get("name") or sid)
        claims.setdefault((sid, info["notebook"]), []).append((entry, f, info))

    # One notebook of another name in a one-notebook assignment: that is the submission.
    for (sid, nb), items in list(claims.items()):
        if nb is not None:
            continue
        del claims[(sid, nb)]
        if len(names) == 1 and len(items) == 1 and (sid, names[0]) not in claims:
            entry, f, info = items[0]
            info["renamed"] = True
            claims[(sid, names[0])] = [(entry, f, info)]
            result.names.setdefault(sid, info.get("name") or sid)
        else:
            for entry, f, _ in items:
                result.flag(sid, "not-a-notebook", f"{f.upload}: {entry.reason}")

    # Two uploads claim one student's notebook: the LMS's newest, else a human decides.
    blocked = set()
    for (sid, nb), items in claims.items():
        if len(items) > 1:
            stamped = [it for it in items if it[2]["timestamp"]]
            if len(stamped) == len(items) and len({it[2]["timestamp"] for it in items}) == \
                    len(items):
                items.sort(key=lambda it: it[2]["timestamp"])
                for entry, _f, _ in items[:-1]:
                    entry.reason = (f"an earlier attempt of {sid}'s {nb}.ipynb "
                                    f"(the newest, {items[-1][0].upload}, is graded)")
                claims[(sid, nb)] = items[-1:]
                continue
            uploads = [it[0].upload for it in items]
            for entry, _, _ in items:
                entry.reason = (f"name clash: {len(items)} uploads claim {sid}'s {nb}.ipynb "
                                f"({'; '.join(uploads)}); none graded: rename or use a roster")
            result.flag(sid, "name-clash", f"{len(items)} uploads claim {nb}.ipynb: "
                        f"{'; '.join(uploads)}: not graded until a human picks one")
            blocked.add(sid)

    for (sid, nb), items in sorted(claims.items()):
        if sid in blocked:
            continue
        entry, f, info = items[0]
        folder = dest / sid
        folder.mkdir(parents=True, exist_ok=True)
        data = f.read()
        (folder / f"{nb}.ipynb").write_bytes(data)
        entry.status, entry.notebook = "graded", nb
        entry.sha256 = hashlib.sha256(data).hexdigest()
        entry.reason = f"graded as {sid}/{nb}.ipynb ({info['layout'] or 'as named'})"
        result.students[sid] = folder
        if info["renamed"]:
            result.flag(sid, "renamed", f"{f.upload} is not named {nb}.ipynb: graded as "
                        "that notebook", cell=nb)
        if info["late"]:
            result.late.add(sid)
        if info["timestamp"]:
            old = result.timestamps.get(sid)
            result.timestamps[sid] = max(old, info["timestamp"]) if old else info["timestamp"]
    # A student whose upload holds no notebook of this assignment (a PDF, another unit's
    # notebook) submitted nothing gradeable: an empty folder, so they are scored 0 with a
    # missing-notebook fault next to the files listed above, never left out.
    for entry in result.files:
        sid = entry.student
        if sid and sid not in blocked and sid not in result.students and \
                entry.status == "listed":
            (dest / sid).mkdir(parents=True, exist_ok=True)
            result.students[sid] = dest / sid
            result.names.setdefault(sid, sid)
    for sid in blocked:
        result.students.pop(sid, None)
        shutil.rmtree(dest / sid, ignore_errors=True)
        for entry in result.files:
            if entry.student == sid and entry.status == "graded":
                entry.status = "listed"
                entry.reason = f"{sid} has a name clash in another notebook: not graded"
    return result


def _read_timestamp(f: _File, sid, result: Collection):
    try:
        text = f.read().decode().strip()
    except (OSError, UnicodeDecodeError):
        return
    if sid and text:
        result.timestamps[sid] = text


def digest(folder: Path):
    """One hash of every notebook in a student's folder (to skip unchanged re-runs)."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.ipynb")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()
