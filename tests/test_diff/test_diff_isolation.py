"""The diff/ folder is self-contained: it imports only its four dependencies and runs anywhere."""
import ast
import shutil
import subprocess
import sys
import textwrap

from diff_helpers import PACKAGE_DIR

ALLOWED = {'torch', 'diffusers', 'transformers', 'yaml'}


def test_imports_are_stdlib_or_the_four_dependencies():
    files = sorted(PACKAGE_DIR.glob('*.py'))
    assert len(files) > 5
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:  # relative: inside the package
                    continue
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                assert top in ALLOWED or top in sys.stdlib_module_names, f'{path.name}: {name}'


def test_copied_folder_runs_a_forward_pass_without_the_repository(tiny_sd_dir, tiny_sd_family,
                                                                  tmp_path):
    shutil.copytree(PACKAGE_DIR, tmp_path / 'vendor' / 'diff')
    # Two families: the SD 2.1-shaped model and an SD 1.5-shaped one (other text width,
    # no linear projection, PNDM scheduler); the copied package serves both unchanged.
    folders = [str(tiny_sd_dir), str(tiny_sd_family('sd15'))]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path / 'vendor')!r})
        # The project (installed in this environment) and its other dependencies are made
        # unimportable, as on a machine that has only the four (a None entry in sys.modules
        # makes `import` fail and find_spec raise).
        for name in ('mmseg', 'tools', 'experiments', 'mmengine', 'mmcv', 'kornia',
                     'cityscapesscripts', 'cv2'):
            sys.modules[name] = None
        import torch
        from diff import DIFFConfig, DIFFEncoder
        for folder in {folders!r}:
            config = DIFFConfig(model_id=folder, projection_channels=[64, 128, 128],
                                stride4_channels=32, timesteps=[30, 20, 10], saved_steps=[2, 0])
            encoder = DIFFEncoder.from_config(config)
            with torch.no_grad():
                outputs = encoder(torch.zeros(1, 3, 64, 64), generator=[torch.Generator()])
            assert [tuple(o.shape) for o in outputs] == [
                (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 128, 2, 2)]
            assert encoder.last_usage.calls == 3
        loaded = sorted(m for m, module in sys.modules.items()
                        if m.split('.')[0] in ('mmseg', 'mmengine', 'mmcv') and module is not None)
        assert not loaded, loaded
        assert sys.modules['diff'].__file__.startswith({str(tmp_path)!r})
        print('standalone ok')
    """)
    # -I: isolated mode (no PYTHONPATH, no user site, no script or working directory on the
    # path); the working directory is elsewhere, so only the copy and site-packages are visible.
    result = subprocess.run([sys.executable, '-I', '-c', script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1',
                                 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'standalone ok' in result.stdout


def test_runtime_modules_name_no_model_family():
    """Model-agnostic: only the measurement catalogue (architectures.py) and the defaults
    (config.py's model_id, the download hint, the weights fingerprint) name a model; no string
    or identifier in the code that runs a UNet names a family (docstrings and comments may)."""
    allowed = {'architectures.py', 'config.py', 'components.py', 'fingerprint.py'}
    names = ('sd15', 'sd21', 'sd20', 'v1-5', '1.5', '2-1', '2.1', 'xl', 'openclip')
    for path in sorted(PACKAGE_DIR.glob('*.py')):
        if path.name in allowed:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        words = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and id(node) not in docstrings]
        words += [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
        words += [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)]
        hits = sorted({n for n in names for w in words if n in w.lower()})
        assert not hits, f'{path.name} names {hits}'
