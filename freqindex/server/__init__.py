"""`freqindex serve`: the HTTP face of the library (see app.py for the layout)."""
