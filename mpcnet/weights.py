"""The weights registry: ``weights.yaml`` lists every model file the toolkit can use.

Files are looked up in ``$MPCNET_WEIGHTS_DIR`` first, then ``~/.cache/mpcnet/weights``, then (for
entries marked ``bundled``) in the checkout's ``weights/`` folder, or the wheel's copy of it. ``weights.yaml``
and the bundled files ship in the wheel, so a wheel install finds them as a source checkout does. A file is
only ever used after its sha256 matches the registry; an entry whose sha256 is ``unknown`` is
refused until the user pins one (``mpcnet weights pin``). Nothing downloads unless asked
(``mpcnet weights fetch``).
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from mpcnet.utils.safe_output import write_bytes_atomic

# A source checkout keeps the registry and the bundled models at its top level (weights.yaml, weights/);
# a wheel carries copies of them in the package's bundled/ folder (setup.py puts them there).
_WHEEL_DATA = Path(__file__).with_name("bundled")
_CHECKOUT = Path(__file__).resolve().parents[1]
WEIGHTS_REGISTRY_FILE, BUNDLED_DIR = (
    (_WHEEL_DATA / "weights.yaml", _WHEEL_DATA) if (_WHEEL_DATA / "weights.yaml").is_file()
    else (_CHECKOUT / "weights.yaml", _CHECKOUT / "weights"))
UNKNOWN = "unknown"


class WeightsError(Exception):
    """A model file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class WeightEntry:
    name: str
    file: str
    url: str | None  # None: ships with the package only (``bundled``)
    sha256: str
    size: int | None
    licence: str
    purpose: str
    bundled: bool = False  # the file is in BUNDLED_DIR

    @property
    def pinned_sha256(self) -> str:
        """The registry's sha256, or the user's pin where the registry says ``unknown``."""
        return self.sha256 if self.sha256 != UNKNOWN else load_pins().get(self.name, UNKNOWN)


def cache_dir() -> Path:
    return Path(os.environ.get("MPCNET_CACHE_DIR", Path.home() / ".cache" / "mpcnet"))


def search_dirs() -> list[Path]:
    """Where model files are looked for, in order."""
    dirs = [Path(os.environ["MPCNET_WEIGHTS_DIR"])] if os.environ.get("MPCNET_WEIGHTS_DIR") else []
    return dirs + [cache_dir() / "weights"]


def pins_file() -> Path:
    return cache_dir() / "pins.yaml"


def load_pins() -> dict[str, str]:
    path = pins_file()
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def weights_registry_file() -> Path:
    """The package's ``weights.yaml``, or ``$MPCNET_WEIGHTS_YAML``."""
    return Path(os.environ.get("MPCNET_WEIGHTS_YAML", WEIGHTS_REGISTRY_FILE))


def load_weights_registry() -> dict[str, WeightEntry]:
    entries = yaml.safe_load(weights_registry_file().read_text())["weights"]
    return {e["name"]: WeightEntry(**e) for e in entries}


def get_entry(name: str) -> WeightEntry:
    registry = load_weights_registry()
    if name not in registry:
        raise WeightsError(f"unknown weights '{name}'; known: {', '.join(sorted(registry))}")
    return registry[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(entry: WeightEntry) -> Path | None:
    """The first existing copy of ``entry``'s file, or None."""
    candidates = [d / entry.file for d in search_dirs()]
    if entry.bundled:
        candidates.append(BUNDLED_DIR / entry.file)
    return next((p for p in candidates if p.is_file()), None)


def locations() -> dict:
    """Where this install keeps model files: the registry, the folders searched in order (the bundled
    folder last, for ``bundled`` entries) and the user's pins."""
    return {"registry": str(weights_registry_file()), "search": [str(d) for d in search_dirs()],
            "bundled": str(BUNDLED_DIR), "pins": str(pins_file())}


def verify(entry: WeightEntry, path: Path) -> None:
    expected = entry.pinned_sha256
    if expected == UNKNOWN:
        raise WeightsError(
            f"'{entry.name}' has no known sha256, so {path} is not used. Check where the file came "
            f"from, then pin it: mpcnet weights pin {entry.name}")
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(f"{path} does not match the sha256 of '{entry.name}' "
                           f"(expected {expected[:16]}…, got {actual[:16]}…); delete it and fetch again")


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A file the user chose (used as it is), or a verified local copy of the registry entry of that name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = str(name_or_path)
    if name not in load_weights_registry():
        raise WeightsError(f"'{name}' is neither a file nor a name in {weights_registry_file().name} "
                           "(see 'mpcnet weights list')")
    entry = get_entry(name)
    path = locate(entry)
    if path is None:
        where = " or ".join(str(d) for d in search_dirs())
        raise WeightsError(f"'{name}' ({entry.file}) is not in {where}. Download it with "
                           f"'mpcnet weights fetch {name}' or copy the file there.")
    verify(entry, path)
    return path


def pin(name: str, sha256: str | None = None) -> str:
    """Record the user's sha256 for an entry the registry does not know the hash of."""
    entry = get_entry(name)
    if entry.sha256 != UNKNOWN:
        raise WeightsError(f"'{name}' is already pinned by {weights_registry_file().name}")
    if sha256 is None:
        path = locate(entry)
        if path is None:
            raise WeightsError(f"no local copy of '{name}' to pin; give --sha256")
        sha256 = sha256_of(path)
    pins = load_pins() | {name: sha256.lower()}
    write_bytes_atomic(pins_file(), yaml.safe_dump(pins).encode())
    return sha256


def fetch(name: str, progress=None) -> Path:
    """Download ``name`` into the cache, verify it, and move it into place atomically.

    ``progress(done_bytes, total_bytes)`` is called as data arrives.
    """
    entry = get_entry(name)
    if entry.url is None:
        raise WeightsError(f"'{name}' ships with mpcnet ({BUNDLED_DIR / entry.file}); there is nothing to download")
    existing = locate(entry)
    if existing is not None and entry.pinned_sha256 != UNKNOWN and sha256_of(existing) == entry.pinned_sha256:
        return existing
    target = cache_dir() / "weights" / entry.file
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry.url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or entry.size or 0
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        expected = entry.pinned_sha256
        if expected != UNKNOWN and digest.hexdigest() != expected:
            raise WeightsError(f"download of '{name}' has sha256 {digest.hexdigest()[:16]}…, "
                               f"expected {expected[:16]}…; nothing was kept")
        os.replace(part, target)
    except OSError as exc:
        raise WeightsError(f"could not download '{name}' from {entry.url}: {exc}") from exc
    finally:
        part.unlink(missing_ok=True)
    return target
