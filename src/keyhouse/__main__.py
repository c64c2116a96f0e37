from keyhouse.cli import app

app()
