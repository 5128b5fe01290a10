"""The ``folder`` dataset: your own NIfTI volumes in the layout of docs/folder-dataset.md."""
from petbench import hookimpl
from petbench.data.normalization import TrainPercentile
from petbench.options import between
from petbench.datasets.folder import drfs_named, scan_folder
from petbench.datasets.scanned.scanned_dataset import ScannedDataset


class FolderDataset(ScannedDataset):
    name = "folder"
    description = ("Your own NIfTI volumes: paired/<subject>/{spet,lpet_drf<N>}.nii.gz and "
                   "unpaired_spet/<subject>.nii.gz; needs --data-root or PETBENCH_FOLDER_ROOT")
    defaults = {
        "data_root": "",  # the folder; else $PETBENCH_FOLDER_ROOT
        "crop": "none",  # none (volumes as they are) | fixed (the paper's block) | body
        "size": 128,  # edge of the cubic block when cropping
        "units": "a.u.",  # a label for the values (e.g. Bq/mL, SUV); they are never rescaled
    }
    option_constraints = {"size": between(1, 4096)}  # the edge of the cropped block, in voxels
    drfs = (4, 10, 20, 50, 100)  # typical; an instance has the DRFs its files are named with
    units = "a.u."
    normalization = TrainPercentile(99.5)
    root_env = "PETBENCH_FOLDER_ROOT"

    def __init__(self, **options):
        super().__init__(**options)
        self.units = str(self.options["units"]) or "a.u."
        self.drfs = drfs_named(self.root) or type(self).drfs

    def no_root_message(self) -> str:
        return ("the folder dataset reads your own NIfTI volumes: pass --data-root DIR (or set PETBENCH_FOLDER_ROOT) "
                "laid out as paired/<subject>/spet.nii.gz + lpet_drf<N>.nii.gz and unpaired_spet/<subject>.nii.gz "
                "(docs/folder-dataset.md)")

    def scan(self):
        return scan_folder(self.root, self.cache)


@hookimpl
def register_datasets(register):
    register(FolderDataset)
