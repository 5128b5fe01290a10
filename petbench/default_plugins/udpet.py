"""The ``udpet`` dataset: the Ultra-low Dose PET Imaging Challenge data, read as the organisers hand it out.

See docs/udpet.md: the layouts recognised, the preprocessing (the paper's 128^3 block by default),
units and SUV, and the messages for bad data.
"""
from petbench import hookimpl
from petbench.data.normalization import TrainPercentile
from petbench.options import between
from petbench.datasets.udpet.scan import SCANNERS, UDPET_READERS, scan_udpet
from petbench.datasets.scanned.scanned_dataset import ScannedDataset

UNITS = {"bq_ml": "Bq/mL", "suv": "SUV"}


class UdpetDataset(ScannedDataset):
    name = "udpet"
    description = ("Ultra-low Dose PET Imaging Challenge data (DICOM or NIfTI, as handed out); "
                   "needs --data-root or PETBENCH_UDPET_ROOT")
    defaults = {
        "data_root": "",  # the unpacked download; else $PETBENCH_UDPET_ROOT
        "scanner": "quadra",  # the paper used the Siemens Biograph Vision Quadra subjects only
        "crop": "fixed",  # fixed (the paper's 128^3 block) | body | none
        "size": 128,  # edge of the cubic block
        "units": "bq_ml",  # bq_ml (as stored) | suv (body-weight SUV, per series)
    }
    option_constraints = {"size": between(1, 4096)}  # the edge of the cropped block, in voxels
    drfs = (2, 4, 10, 20, 50, 100)  # 2 only in the 2022 release
    units = "Bq/mL"
    normalization = TrainPercentile(99.5)
    root_env = "PETBENCH_UDPET_ROOT"

    def __init__(self, **options):
        super().__init__(**options)
        self.check_choice("scanner", SCANNERS)
        self.check_choice("units", tuple(UNITS))
        self.units = UNITS[self.options["units"]]

    def no_root_message(self) -> str:
        return ("the udpet dataset needs the UDPET challenge data, which the challenge organisers "
                "(udpet-challenge.github.io) provide under a data transfer agreement: pass --data-root DIR "
                "(or set PETBENCH_UDPET_ROOT) to the unpacked download, "
                "or use --dataset phantom, which runs without it")

    def to_suv(self) -> bool:
        return self.options["units"] == "suv"

    def volume_readers(self):
        return UDPET_READERS

    def scan(self):
        return scan_udpet(self.root, self.options["scanner"], self.options["units"], self.cache)


@hookimpl
def register_datasets(register):
    register(UdpetDataset)
