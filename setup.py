"""Builds the C++ core (`pyfaiss_dpq._core`) with CMake.

The extension links against the libfaiss.so of the faiss-cpu wheel present in
the build environment; pyproject.toml pins the same faiss-cpu for build and
runtime, and the import-time ABI check guards the rest.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / "cmake"
        # Configure from scratch: a cache from an earlier pip run would point
        # at that run's (now deleted) isolated build environment.
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        source_dir = Path(__file__).parent.resolve()
        sanitize = os.environ.get("DPQ_SANITIZE", "0")
        subprocess.run(
            [
                "cmake", "-S", str(source_dir), "-B", str(build_dir),
                f"-DPython_EXECUTABLE={sys.executable}",
                f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
                f"-DDPQ_SANITIZE={'ON' if sanitize == '1' else 'OFF'}",
                "-DCMAKE_BUILD_TYPE=Release",
            ],
            check=True,
        )
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)


setup(
    ext_modules=[CMakeExtension("pyfaiss_dpq._core")],
    cmdclass={"build_ext": CMakeBuild},
)
