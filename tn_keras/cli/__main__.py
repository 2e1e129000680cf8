import sys

from tn_keras.cli import main

sys.exit(main())
