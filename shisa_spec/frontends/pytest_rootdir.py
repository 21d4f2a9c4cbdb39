"""Choose pytest's rootdir and ini file again once the plugin's options are known.

pytest picks its rootdir and ini file *before* it loads entry-point plugins, from a parse of the command
line that does not know our options: in ``pytest -m gpu --model /models/shisa --transcript run.jsonl``
it takes ``/models/shisa`` for a test path, roots the run at ``/models``, reads no ini file (no
``testpaths``, markers or ``addopts``) and never loads the repository's ``conftest.py``. Only the
``--model=/abs`` form escaped that. The plugin is loaded by then, so its ``pytest_load_initial_conftests``
hook (before any conftest loads) redoes that step with the option values set aside, as pytest itself
would have done had it known them. This touches pytest internals (``Config._rootpath`` and friends); the
tests that run the README's commands as typed catch a pytest release that changes them.
"""

from __future__ import annotations

from typing import Any


def redo_setup(config: Any, args: list[str]) -> bool:
    """Re-determine rootdir/ini from the file-or-dir arguments left once our options took their values.

    Returns True when something changed. ``args`` is pytest's argument list, extended in place with the
    ini file's ``addopts`` as pytest's own parse would have done.
    """
    from _pytest.config.findpaths import determine_setup

    ns = config.known_args_namespace
    if getattr(ns, "rootdir", None) or getattr(ns, "inifilename", None):
        return False  # the user chose: keep it
    found = determine_setup(
        inifile=None, override_ini=ns.override_ini, args=list(ns.file_or_dir),
        rootdir_cmd_arg=None, invocation_dir=config.invocation_params.dir,
    )
    rootpath, inipath, inicfg = found[0], found[1], found[2]
    if rootpath == config.rootpath and inipath == config.inipath:
        return False
    old_cut = str(config.inipath.parent if config.inipath is not None else config.rootpath)
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg
    if len(found) > 3:
        config._ignored_config_files = found[3]
    config._parser.extra_info["rootdir"] = str(rootpath)
    config._parser.extra_info["inifile"] = str(inipath)
    config._inicache.clear()
    addopts = config.getini("addopts")
    if addopts:
        args[:] = config._validate_args(list(addopts), "via addopts config") + args
        config._parser.parse_known_args(args, namespace=ns)
    config._configure_python_path()
    if ns.confcutdir == old_cut:  # pytest's default, derived from the wrong root: derive it again
        ns.confcutdir = str(inipath.parent if inipath is not None else rootpath)
    return True
