"""Reasons distilled from uv's output: a failed install in, one line naming the cause out."""

from __future__ import annotations

from grader.stages.install_failure import explain_install_failure

# Real uv output of a build container: psycopg2 2.9.9 has no wheel for 3.11 and no pg_config to build with.
PSYCOPG2_BUILD = ('''Using Python 3.11.2 environment at: /opt/venv
Resolved 18 packages in 882ms
Downloading sqlalchemy (3.3MiB)
   Building psycopg2==2.9.9
 Downloaded sqlalchemy
error: Failed to build `psycopg2==2.9.9`
  cause: The build backend returned an error
  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)

         [stdout]
         running egg_info
         writing psycopg2.egg-info/PKG-INFO
         writing dependency_links to psycopg2.egg-info/dependency_links.txt
         writing top-level names to psycopg2.egg-info/top_level.txt

         [stderr]
         /opt/venv/.uv-cache/builds-v0/.tmpQgYoZx/lib/python3.11/site-packages/setuptools/dist.py:765: '''
    '''SetuptoolsDeprecationWarning: License classifiers are deprecated.
         !!

                 ********************************************************************************
                 Please consider removing the following classifiers in favor of a SPDX license expression:

                 License :: OSI Approved :: GNU Library or Lesser General Public License (LGPL)

                 See https://packaging.python.org/en/latest/guides/writing-pyproject-toml/#license for details.
                 ********************************************************************************

         !!
           self._finalize_license_expression()

         Error: pg_config executable not found.

         pg_config is required to build psycopg2 from source.  Please add the directory
         containing pg_config to the $PATH or specify the full executable path with the
         option:

             python setup.py build_ext --pg-config /path/to/pg_config build ...

         or with the pg_config option in 'setup.cfg'.

         If you prefer to avoid building psycopg2 from source, please install the PyPI
         'psycopg2-binary' package instead.

         For further information please check the 'doc/src/install.rst' file (also at
         <https://www.psycopg.org/docs/install.html>).

hint: Build failures usually indicate a problem with the package or the build environment
''')


def test_a_dependency_that_does_not_build_names_package_version_python_and_why():
    """The real psycopg2 failure: the one line of its build output that says why, not the backend's call."""
    assert explain_install_failure(PSYCOPG2_BUILD) == (
        "`psycopg2==2.9.9` has no wheel for Python 3.11.2 and building it from source failed: "
        "Error: pg_config executable not found."
    )


def test_a_build_failure_prefers_the_compilers_fatal_error():
    """A missing header is the cause; gcc's exit code after it is not."""
    tail = (
        "Using Python 3.11.2 environment at: /opt/venv\n   Building uwsgi==2.0.28\n"
        "error: Failed to build `uwsgi==2.0.28`\n  cause: The build backend returned an error\n"
        "  cause: Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit status: 1)\n\n"
        "         [stderr]\n         plugins/python/uwsgi_python.h:2:10: fatal error: Python.h: No such file or directory\n"
        "         compilation terminated.\n         error: command '/usr/bin/gcc' failed with exit code 1\n\n"
        "hint: Build failures usually indicate a problem with the package or the build environment\n"
    )
    assert explain_install_failure(tail) == (
        "`uwsgi==2.0.28` has no wheel for Python 3.11.2 and building it from source failed: "
        "plugins/python/uwsgi_python.h:2:10: fatal error: Python.h: No such file or directory"
    )
    bare = "error: Failed to build `x==1`\n  cause: The build backend returned an error\n"
    assert explain_install_failure(bare) == (
        "`x==1` has no wheel for the base Python and building it from source failed: "
        "Failed to build `x==1`: The build backend returned an error"
    )


def test_no_wheel_for_the_platform_or_python_names_the_requirement():
    """Real uv resolution failures: no wheel for linux, and a release that needs a newer Python."""
    pywin32 = (
        "Using Python 3.11.7 environment at: uvt\nerror: No solution found when resolving dependencies\n"
        "  cause: Because pywin32==306 has no wheels with a matching platform tag (e.g., `manylinux_2_36_x86_64`) and "
        "you require pywin32==306, we can conclude that your requirements are unsatisfiable.\n\n"
        "hint: Wheels are available for `pywin32` (v306) on the following platforms: `win32`, `win_amd64`, `win_arm64`\n"
    )
    assert explain_install_failure(pywin32).startswith(
        "`pywin32==306` cannot be installed: No solution found when resolving dependencies: Because pywin32==306 has "
        "no wheels with a matching platform tag"
    )
    assert explain_install_failure(pywin32).endswith("`win_arm64`)")
    django = (
        "Using Python 3.11.7 environment at: uvt\nerror: No solution found when resolving dependencies\n"
        "  cause: Because the current Python version (3.11.7) does not satisfy Python>=3.12 and django==6.0 depends "
        "on Python>=3.12, we can conclude that django==6.0 cannot be used.\n"
        "         And because you require django==6.0, we can conclude that your requirements are unsatisfiable.\n"
    )
    assert explain_install_failure(django).startswith(
        "`django==6.0` cannot be installed: No solution found when resolving dependencies: Because the current Python "
        "version (3.11.7) does not satisfy Python>=3.12"
    )


def test_other_uv_errors_read_as_build_install_error_did():
    """A superset of build.install_error: the same text for what is not a build or resolution failure."""
    assert explain_install_failure("error: Failed to download `x==1`\n  cause: Hash mismatch for `x==1`\n\n") == (
        "Failed to download `x==1`: Hash mismatch for `x==1`"
    )
    assert explain_install_failure("error: first\nerror: last\n") == "last"
    assert explain_install_failure("Killed\n") == ""
    assert len(explain_install_failure("error: " + "x" * 5000)) == 600
    tail = (
        "error: No solution found when resolving dependencies\n  cause: Because no-such-package-1a2b was not found in "
        "the package registry and you require no-such-package-1a2b==1.0, we can conclude that your requirements are "
        "unsatisfiable.\n\nhint: check the name\n"
    )
    assert explain_install_failure(tail) == (
        "`no-such-package-1a2b==1.0` cannot be installed: No solution found when resolving dependencies: Because "
        "no-such-package-1a2b was not found in the package registry and you require no-such-package-1a2b==1.0, we "
        "can conclude that your requirements are unsatisfiable. (hint: check the name)"
    )
