package pth

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

var (
	errTruncated = errors.New("truncated file")
	errNotTorch  = errors.New("not a torch.save file")
)

// decode reads a whole torch.save file held in b; the tensors' Data alias b.
func decode(b []byte) (*File, error) {
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return decodeZip(b)
	}
	return decodeLegacy(b)
}

// decodeZip reads the zip format: <dir>/data.pkl pickles the dict, whose storages are the stored
// (uncompressed) entries <dir>/data/<key>.
func decodeZip(b []byte) (*File, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // entries are only looked up by name
		return nil, fmt.Errorf("zip archive: %w (%w?)", err, errTruncated)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("empty zip archive: %w", errNotTorch)
	}
	// Like torch, take the archive's folder from its first entry.
	dir, _, _ := strings.Cut(zr.File[0].Name, "/")
	entries := make(map[string]*zip.File, len(zr.File))
	for _, e := range zr.File {
		entries[strings.TrimPrefix(e.Name, dir+"/")] = e
	}
	entry := func(name string) ([]byte, error) {
		e := entries[name]
		if e == nil {
			return nil, fmt.Errorf("zip archive has no entry %s/%s", dir, name)
		}
		if e.Method != zip.Store {
			return nil, fmt.Errorf("zip entry %s is compressed (method %d); torch.save stores entries", e.Name, e.Method)
		}
		off, err := e.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("zip entry %s: %w", e.Name, err)
		}
		if off < 0 || off > int64(len(b)) || e.UncompressedSize64 > uint64(int64(len(b))-off) {
			return nil, fmt.Errorf("zip entry %s: %w", e.Name, errTruncated)
		}
		return b[off : off+int64(e.UncompressedSize64)], nil
	}

	if entries["data.pkl"] == nil {
		return nil, fmt.Errorf("zip archive has no entry %s/data.pkl: %w", dir, errNotTorch)
	}
	pkl, err := entry("data.pkl")
	if err != nil {
		return nil, err
	}
	if _, ok := entries["byteorder"]; ok { // written by torch >= 2.1
		order, err := entry("byteorder")
		if err != nil {
			return nil, err
		}
		if string(order) != "little" {
			return nil, fmt.Errorf("byte order %q is not supported", order)
		}
	}
	ss := &storages{byKey: map[string]*storage{}, fileSize: len(b), idLen: 5, locate: func(s *storage) error {
		data, err := entry("data/" + s.key)
		if err != nil {
			return err
		}
		need := s.numel * int64(s.dtype.Size())
		if int64(len(data)) < need {
			return fmt.Errorf("storage %q has %d bytes, fewer than its %d %s elements need", s.key, len(data), s.numel, s.dtype)
		}
		s.data = data[:need]
		return nil
	}}
	obj, _, err := unpickler{persistentLoad: ss.load}.load(pkl)
	if err != nil {
		return nil, fmt.Errorf("%s/data.pkl: %w", dir, err)
	}
	return collect(obj, len(b))
}

// legacyMagic is torch.serialization.MAGIC_NUMBER, the legacy format's first pickle.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// decodeLegacy reads the legacy format: pickles of the magic number, the protocol version, system
// info, the object, and the list of storage keys; then each storage in that order, as an int64 element
// count and its bytes.
func decodeLegacy(b []byte) (*File, error) {
	var pos int
	next := func(what string, u unpickler) (any, error) {
		v, n, err := u.load(b[pos:])
		if err != nil {
			return nil, fmt.Errorf("%s pickle at offset %d: %w", what, pos, err)
		}
		pos += n
		return v, nil
	}
	magic, err := next("magic number", unpickler{})
	if err != nil {
		return nil, fmt.Errorf("%w (neither a zip archive nor a legacy torch pickle): %w", errNotTorch, err)
	}
	if m, ok := magic.(*big.Int); !ok {
		return nil, fmt.Errorf("bad magic number: the first pickle is a %s, not torch's magic number: %w", pyType(magic), errNotTorch)
	} else if m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("bad magic number %#x, want %#x: %w", m, legacyMagic, errNotTorch)
	}
	version, err := next("protocol version", unpickler{})
	if err != nil {
		return nil, err
	}
	if version != legacyProtocol {
		return nil, fmt.Errorf("unsupported legacy protocol version %s, want %d", repr(version), legacyProtocol)
	}
	sysInfo, err := next("system info", unpickler{})
	if err != nil {
		return nil, err
	}
	if d, ok := sysInfo.(*types.Dict); ok {
		if little, ok := d.Get("little_endian"); ok && little != true {
			return nil, fmt.Errorf("big-endian files are not supported")
		}
	}
	ss := &storages{byKey: map[string]*storage{}, fileSize: len(b), idLen: 6}
	obj, err := next("data", unpickler{persistentLoad: ss.load})
	if err != nil {
		return nil, err
	}
	keyList, err := next("storage keys", unpickler{})
	if err != nil {
		return nil, err
	}
	keys, ok := keyList.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are %s, want a list", pyType(keyList))
	}
	for _, k := range *keys {
		key, _ := k.(string)
		s := ss.byKey[key]
		if s == nil {
			return nil, fmt.Errorf("storage key %s is not used by the data pickle", repr(k))
		}
		if len(b)-pos < 8 {
			return nil, fmt.Errorf("storage %q at offset %d: %w", key, pos, errTruncated)
		}
		if numel := le64(b[pos:]); numel != s.numel {
			return nil, fmt.Errorf("storage %q at offset %d has %d elements, the pickle says %d", key, pos, numel, s.numel)
		}
		pos += 8
		nbytes := int(s.numel) * s.dtype.Size() // <= len(b), checked by storages.load
		if nbytes > len(b)-pos {
			return nil, fmt.Errorf("storage %q at offset %d: %d bytes of %s elements, %d left: %w",
				key, pos, nbytes, s.dtype, len(b)-pos, errTruncated)
		}
		s.data = b[pos : pos+nbytes]
		pos += nbytes
	}
	return collect(obj, len(b))
}

// collect makes the File of the unpickled top-level dict. Non-contiguous tensors are copied, at most
// fileSize bytes in all.
func collect(obj any, fileSize int) (*File, error) {
	var items []types.DictEntry
	switch d := obj.(type) {
	case *types.Dict:
		items = *d
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			items = append(items, types.DictEntry{Key: entry.Key, Value: entry.Value})
		}
	default:
		return nil, fmt.Errorf("the file holds a %s, want a dict of tensors", pyType(obj))
	}
	f := &File{Tensors: make(map[string]*Tensor, len(items))}
	budget := fileSize
	for _, item := range items {
		key, ok := item.Key.(string)
		if !ok {
			return nil, fmt.Errorf("dict key %s is a %s, want a str", repr(item.Key), pyType(item.Key))
		}
		var t *Tensor
		switch v := item.Value.(type) {
		case *tensorRef:
			var err error
			if t, err = v.tensor(&budget); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", key, err)
			}
		case *ndarray:
			if t = v.t; t == nil {
				return nil, fmt.Errorf("numpy array %q has no state", key)
			}
		default:
			return nil, fmt.Errorf("key %q holds a %s, want a tensor or numpy array", key, pyType(item.Value))
		}
		if _, dup := f.Tensors[key]; !dup {
			f.Keys = append(f.Keys, key)
		}
		f.Tensors[key] = t
	}
	return f, nil
}
