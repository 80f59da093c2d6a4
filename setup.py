"""The one build step pyproject.toml cannot say: the wheel carries the checkout's top-level
weights.yaml and the models it bundles (weights/*.pth) in mpcnet/bundled/, where mpcnet.weights
looks first, so a wheel install finds its default model outside the checkout."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithModels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        target = Path(self.build_lib) / "mpcnet" / "bundled"
        target.mkdir(parents=True, exist_ok=True)
        for source in [Path("weights.yaml"), *sorted(Path("weights").glob("*.pth"))]:
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithModels})
