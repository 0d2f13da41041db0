#!/usr/bin/env bash
# Makes the virtual environment in which benchmarks/original_text.py runs the original TensorFlow
# text path: the versions the test fixtures were made with. Usage:
#   bash benchmarks/make_original_env.sh [FOLDER]        (default: .venv-original)
#   python benchmarks/run.py --original-python FOLDER/bin/python
set -euo pipefail
folder="${1:-.venv-original}"
python3 -m venv "$folder"
"$folder/bin/pip" install --quiet 'transformers==4.57.6' 'tensorflow-cpu==2.20.0' 'tf-keras==2.20.1'
echo "made $folder; now run: python benchmarks/run.py --original-python $folder/bin/python"
