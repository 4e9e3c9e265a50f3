// Command fake_artist_agent is a MetadataAgent test plugin that answers
// every artist query with fixed data, re-creating the behaviour of the
// original host's fake_artist_agent test plugin:
//
//   - every artist method answers plugin:not_found when the artist name
//     (artistName for top songs) is empty;
//   - album methods answer plugin:not_implemented.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm
// (see ../../build.py).
package main

import (
	"context"

	"wasmhost.local/pdk"
)

type fakeArtistAgent struct{}

func (fakeArtistAgent) GetArtistMBID(_ context.Context, req *pdk.ArtistMBIDRequest) (*pdk.ArtistMBIDResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistMBIDResponse{Mbid: "1234567890"}, nil
}

func (fakeArtistAgent) GetArtistURL(_ context.Context, req *pdk.ArtistURLRequest) (*pdk.ArtistURLResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistURLResponse{Url: "https://example.com"}, nil
}

func (fakeArtistAgent) GetArtistBiography(_ context.Context, req *pdk.ArtistBiographyRequest) (*pdk.ArtistBiographyResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistBiographyResponse{Biography: "This is a test biography"}, nil
}

func (fakeArtistAgent) GetSimilarArtists(_ context.Context, req *pdk.ArtistSimilarRequest) (*pdk.ArtistSimilarResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	// The requested limit is ignored.
	return &pdk.ArtistSimilarResponse{Artists: []*pdk.Artist{
		{Name: "Similar Artist 1", Mbid: "mbid1"},
		{Name: "Similar Artist 2", Mbid: "mbid2"},
	}}, nil
}

func (fakeArtistAgent) GetArtistImages(_ context.Context, req *pdk.ArtistImageRequest) (*pdk.ArtistImageResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistImageResponse{Images: []*pdk.ExternalImage{
		{Url: "https://example.com/image1.jpg", Size: 100},
		{Url: "https://example.com/image2.jpg", Size: 200},
	}}, nil
}

func (fakeArtistAgent) GetArtistTopSongs(_ context.Context, req *pdk.ArtistTopSongsRequest) (*pdk.ArtistTopSongsResponse, error) {
	if req.ArtistName == "" {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistTopSongsResponse{Songs: []*pdk.Song{
		{Name: "Song 1", Mbid: "mbid1"},
		{Name: "Song 2", Mbid: "mbid2"},
	}}, nil
}

func (fakeArtistAgent) GetAlbumInfo(context.Context, *pdk.AlbumInfoRequest) (*pdk.AlbumInfoResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (fakeArtistAgent) GetAlbumImages(context.Context, *pdk.AlbumImagesRequest) (*pdk.AlbumImagesResponse, error) {
	return nil, pdk.ErrNotImplemented
}

// A c-shared wasip1 module runs package initialisers from _initialize but
// never calls main, so registration happens here.
func init() {
	pdk.RegisterMetadataAgent(fakeArtistAgent{})
}

func main() {}
