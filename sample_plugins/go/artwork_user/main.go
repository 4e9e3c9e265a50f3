// Command artwork_user is a MetadataAgent sample that answers with the
// server's own public artwork URLs (artwork service).
//
//   - GetArtistImages: [{url: get_artist_url(id, 300), size: 300}];
//   - GetAlbumImages: [{url: get_album_url(mbid, 300), size: 300}] (the
//     album request carries no id, so the mbid stands in for it);
//   - GetArtistURL: get_track_url(id, 0), the URL of a track's artwork
//     (an unusual answer, there to exercise get_track_url);
//   - an empty id (mbid for albums) gives plugin:not_found. Without a
//     configured ShareURL the URLs start with http://localhost; they are
//     answered as they are (the discord-rich-presence example would drop
//     them as not publicly reachable);
//   - every other method gives plugin:not_implemented.
//
// Build: ../../build.py artwork_user.
package main

import (
	"context"
	"log"

	"wasmhost.local/pdk"
)

const imageSize = 300

type artworkUser struct{}

// public returns the URL when the call gave one.
func public(resp *pdk.GetArtworkUrlResponse, err error) (string, bool) {
	switch {
	case err != nil:
		log.Printf("artwork_user: %v", err)
	case resp.Url == "":
		log.Printf("artwork_user: empty URL")
	default:
		return resp.Url, true
	}
	return "", false
}

func (artworkUser) GetArtistImages(_ context.Context, req *pdk.ArtistImageRequest) (*pdk.ArtistImageResponse, error) {
	if req.Id == "" {
		return nil, pdk.ErrNotFound
	}
	u, ok := public(pdk.ArtworkGetArtistUrl(&pdk.GetArtworkUrlRequest{Id: req.Id, Size: imageSize}))
	if !ok {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistImageResponse{Images: []*pdk.ExternalImage{{Url: u, Size: imageSize}}}, nil
}

func (artworkUser) GetAlbumImages(_ context.Context, req *pdk.AlbumImagesRequest) (*pdk.AlbumImagesResponse, error) {
	if req.Mbid == "" {
		return nil, pdk.ErrNotFound
	}
	u, ok := public(pdk.ArtworkGetAlbumUrl(&pdk.GetArtworkUrlRequest{Id: req.Mbid, Size: imageSize}))
	if !ok {
		return nil, pdk.ErrNotFound
	}
	return &pdk.AlbumImagesResponse{Images: []*pdk.ExternalImage{{Url: u, Size: imageSize}}}, nil
}

func (artworkUser) GetArtistURL(_ context.Context, req *pdk.ArtistURLRequest) (*pdk.ArtistURLResponse, error) {
	if req.Id == "" {
		return nil, pdk.ErrNotFound
	}
	u, ok := public(pdk.ArtworkGetTrackUrl(&pdk.GetArtworkUrlRequest{Id: req.Id}))
	if !ok {
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistURLResponse{Url: u}, nil
}

func (artworkUser) GetArtistMBID(context.Context, *pdk.ArtistMBIDRequest) (*pdk.ArtistMBIDResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (artworkUser) GetArtistBiography(context.Context, *pdk.ArtistBiographyRequest) (*pdk.ArtistBiographyResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (artworkUser) GetSimilarArtists(context.Context, *pdk.ArtistSimilarRequest) (*pdk.ArtistSimilarResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (artworkUser) GetArtistTopSongs(context.Context, *pdk.ArtistTopSongsRequest) (*pdk.ArtistTopSongsResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (artworkUser) GetAlbumInfo(context.Context, *pdk.AlbumInfoRequest) (*pdk.AlbumInfoResponse, error) {
	return nil, pdk.ErrNotImplemented
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterMetadataAgent(artworkUser{})
}

func main() {}
