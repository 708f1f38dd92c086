import importlib

import pytest

from edge import cli


def test_convert_without_the_extra_names_the_extra(monkeypatch, capsys):
    real = importlib.import_module

    def fake(name, *args):
        if name == "converters.convert":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", fake)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert", "x", "-o", "y"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'florence-edge[convert]'" in err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "convert" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("florence-edge ")


def test_a_value_with_a_leading_minus_stays_with_its_flag():
    argv = ["run", "--region", "-10,5,100,100", "-t", "OD", "--threads", "-1", "--json", "-i", "x.png"]
    assert cli._join_negative_values(argv) == ["run", "--region=-10,5,100,100", "-t", "OD", "--threads=-1",
                                               "--json", "-i", "x.png"]
