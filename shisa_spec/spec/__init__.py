"""The spec as data: case files and their schema, the check registry and kinds, text normalisation and
extraction, the sandbox that runs model-written code, tokenizer drift snapshots. Imports no other layer."""
