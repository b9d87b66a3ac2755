"""The model repository (OVMS's `--source_model`, `--pull`, `--add_to_config`, `--remove_from_config`,
`--list_models`), one responsibility per module, lower ones first:

* ``layout``: tasks, weight formats, the files a servable needs, the errors, listing servables;
* ``export``: optimum-intel export and tokenizer conversion (the project's one main_export call);
* ``graph_file``: the graph.pbtxt written beside a prepared model;
* ``config_edit``: adding/removing config.json entries;
* ``pull``: preparing a servable from a Hugging Face id or a local folder;
* ``commands``: the CLI flags and their dispatch (serving/cli.py calls it).
"""
