from cinesense.cli import app

app(prog_name="cinesense")
