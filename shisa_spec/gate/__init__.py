"""The upgrade gate: comparing a baseline run with a candidate, the HTML/Markdown report, calibrating
known-failure marks from a transcript. Imports the layers below; never the front ends."""
