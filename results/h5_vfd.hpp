#pragma once
// A write-through HDF5 file driver that never reports a failed write to HDF5.
//
// HDF5 1.10 cannot close a file whose write failed (the id stays open and the library crashes at
// exit: h5py #914), so outputs used to be built whole in memory (core driver) and written with
// checked write(2): memory grew with the file. This driver writes through with pwrite(2), so memory
// stays bounded; the first failed write (disk full, ulimit -f, EIO) is recorded instead of returned,
// the file's contents so far are read back into memory and the driver goes on there, so HDF5
// finishes and closes normally. The caller then reads the recorded errno and discards the file.
#include <hdf5.h>

namespace flowgauge::h5 {

struct StreamStatus {
  int error = 0;  // errno of the first failed open, write, truncate or close (0: none)
};

// Makes `fapl` use the driver; `status` (must outlive the file) receives the first error when the
// file is closed (and as it happens).
herr_t set_stream_driver(hid_t fapl, StreamStatus* status);

}  // namespace flowgauge::h5
